"""The bench's targets and the table it prints, from a :class:`bench.rows.Report`."""

from __future__ import annotations

from bench import api_while_counting
from bench import collector as collector_bench
from bench.rows import Report, RowId

Target = tuple[str, str, bool]  # (target, measured, met)


def _ratio(ours: float | None, peer: float | None, times: float, target: str) -> Target:
    if not ours or not peer:
        return target, "not measured", False
    return target, f"{ours / peer:.1f}x", ours >= times * peer


def targets(report: Report) -> list[Target]:
    """(target, measured, met) for the targets of the benchmark issues."""
    ours = report.rate(RowId.ONE) or 0.0
    raw = report.rate(RowId.RAW)
    many = report.rate(RowId.MANY_SHOPS)
    bad = report.rate(RowId.DEAD_LETTERS)
    out = [
        (">= 50k events/s per worker", f"{ours:,.0f}", ours >= 50_000),
        (
            ">= 40 % of the raw ceiling",
            f"{100 * ours / raw:.0f} %" if raw else "not measured",
            bool(raw and ours >= 0.4 * raw),
        ),
        _ratio(ours, report.rate(RowId.FAUST_TABLE), 10, ">= 10x the naive Faust Table"),
        _ratio(ours, report.rate(RowId.QUIX), 2, ">= 2x Quix Streams"),
    ]
    if report.freshness_ms is not None:
        p99 = report.freshness_ms["p99_ms"]
        out.append(("freshness p99 < 1 s", f"{p99} ms", p99 < 1000))
    if report.api_latency is not None:
        for query, bound in (("overview this_month", 10), ("overview year_to_date", 50)):
            p99 = report.api_latency[query]["p99_ms"]
            when = "this month" if query.endswith("month") else "year to date"
            out.append((f"overview p99 < {bound} ms ({when})", f"{p99} ms", p99 < bound))
    if report.redis_50_shops is not None:
        per_set = report.redis_50_shops["bytes_per_counter_set"]
        out.append(("<= 200 bytes of Redis per counter set", f"{per_set} B", per_set <= 200))
    out.append(
        (
            "10 % dead letters >= half the clean rate",
            f"{100 * bad / ours:.0f} %" if bad and ours else "not measured",
            bool(bad and bad >= 0.5 * ours),
        )
    )
    out.append(
        (
            "10,000 shops within 20 % of 50 shops",
            f"{100 * (many / ours - 1):+.0f} %" if many and ours else "not measured",
            bool(many and many >= 0.8 * ours),
        )
    )
    return out + _live_targets(report)


def _live_targets(report: Report) -> list[Target]:
    """On the live shape; none when it did not run."""
    ours, live = report.rate(RowId.LIVE), report.live_shape
    if ours is None or live is None:
        return []
    s = live["steady"]
    p99 = s["freshness_ms"]["p99_ms"]
    return [
        _ratio(ours, report.rate(RowId.LIVE_QUIX), 2, ">= 2x Quix Streams, live shape"),
        (
            f"live shape: freshness p99 < 1 s at {s['offered_per_s']:,}/s offered",
            f"{p99} ms ({s['events_per_s']:,}/s counted)",
            p99 < 1000,
        ),
    ]


def _whole_or_dash(value: float) -> str:
    return "-" if value != value else f"{value:.0f}"  # NaN: not measured for this row


def render(report: Report) -> str:
    lines = [
        f"machine: {report.machine}; {report.events:,} events per run",
        "",
        "| row | events/s | CPU % | Redis CPU % | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in report.rows.values():
        r = row.run
        cpu, redis_cpu, rss = (
            _whole_or_dash(v) for v in (r.cpu_percent, r.redis_cpu_percent, r.peak_rss_mb)
        )
        lines.append(f"| {row.label} | {r.rate:,.0f} | {cpu} | {redis_cpu} | {rss} |")
    lines += _stream_lines(report) + _latency_lines(report) + live_lines(report)
    lines += cluster_lines(report)
    decoder = report.decoder_us
    if decoder:
        lines += [
            "",
            f"decoder per event (bench stream, one process): orjson.loads alone "
            f"{decoder['orjson_loads_us']} us; contract validator (every event before the typed "
            f"fast path) {decoder['validator_us']} us; Decoder {decoder['decoder_us']} us",
        ]
    if report.collector is not None:
        lines += ["", collector_bench.render(report.collector)]
    if report.api_while_counting is not None:
        lines += ["", api_while_counting.render(report.api_while_counting)]
    lines += ["", "| target | measured | |", "|---|---:|---|"]
    for target, measured, met in targets(report):
        lines.append(f"| {target} | {measured} | {'met' if met else 'MISSED'} |")
    return "\n".join(lines)


def _stream_lines(report: Report) -> list[str]:
    """Freshness and Redis bytes on the bench stream."""
    lines = [""]
    f = report.freshness_ms
    if f is not None:
        lines.append(
            f"freshness (produce -> visible in the API) at half the 1-worker rate: "
            f"p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms ({f['samples']} probes)"
        )
    m50, m10k = report.redis_50_shops, report.redis_10k_shops
    if m50 is not None:
        lines.append(
            f"Redis, 50 shops: {m50['used_mb']} MB for {m50['counter_sets']:,} (shop, day, group, "
            f"variation) counter sets = {m50['bytes_per_counter_set']} bytes each "
            "(all state counted)"
        )
    if m10k is not None:
        lines.append(
            f"Redis, 10,000 shops: {m10k['used_mb']} MB for {m10k['counter_sets']:,} counter sets"
            f" = {m10k['bytes_per_counter_set']} bytes each"
        )
    return lines


def _latency_lines(report: Report) -> list[str]:
    if report.api_latency is None or report.api_latency_10k_shops is None:
        return []
    lines = [
        "",
        "| query (one shop: 50 groups x 4 variations, a year of data) | p50 ms | p99 ms "
        "| p50 / p99 ms beside 10,000 shops |",
        "|---|---:|---:|---:|",
    ]
    for name, v in report.api_latency.items():
        w = report.api_latency_10k_shops[name]
        lines.append(f"| {name} | {v['p50_ms']} | {v['p99_ms']} | {w['p50_ms']} / {w['p99_ms']} |")
    lines += [
        "",
        f"Redis forks (AOF rewrites) while the queries ran: {report.api_latency_forks} / "
        f"{report.api_latency_10k_shops_forks} beside 10,000 shops",
    ]
    return lines


def live_lines(report: Report) -> list[str]:
    """The live-shape steady phase (empty when it did not run)."""
    live = report.live_shape
    if not live:
        return []
    s, m = live["steady"], live["redis"]
    f = s["freshness_ms"]
    return [
        "",
        f"live shape, steady: {s['offered_per_s']:,} events/s offered, {s['events_per_s']:,} "
        f"counted; freshness p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms ({f['samples']} probes); "
        f"CPU worker {s['worker_cpu_percent']} %, Redis {s['redis_cpu_percent']} %, broker "
        f"{s['broker_cpu_percent']} %",
        f"live shape, per event: worker {s['worker_us_per_event']} us, Redis "
        f"{s['redis_us_per_event']} us, broker {s['broker_us_per_event']} us of CPU; Redis "
        f"{m['used_mb']} MB for {m['counter_sets']:,} counter sets = "
        f"{m['bytes_per_counter_set']} bytes each",
    ]


def cluster_lines(report: Report) -> list[str]:
    """The 3-primary Redis Cluster run (bench/cluster.py); empty when it did not run."""
    c = report.cluster
    if not c:
        return []
    s = c["costs"]
    lines = [
        "",
        f"Redis Cluster ({c['primaries']} primaries, {c['workers']} workers), live shape: "
        f"{s['events_per_s']:,} events/s over {s['seconds']} s; per event: worker "
        f"{s['worker_us_per_event']} us, Redis {s['redis_us_per_event']} us (all primaries) of "
        f"CPU; Redis {c['redis']['used_mb']} MB for {c['redis']['counter_sets']:,} counter sets "
        f"= {c['redis']['bytes_per_counter_set']} bytes each; keys per primary "
        f"{' / '.join(f'{n:,}' for n in c['keys_per_primary'])}",
    ]
    one = report.rows.get(RowId.LIVE)
    if one is not None and one.run.rate:
        per_event = 1e4 / one.run.rate  # a CPU % of one core at that rate, in us per event
        lines.append(
            f"beside it, 1 worker on one Redis, same shape (backlog row): worker "
            f"{one.run.cpu_percent * per_event:.1f} us, Redis "
            f"{one.run.redis_cpu_percent * per_event:.1f} us of CPU per event"
        )
    return lines
