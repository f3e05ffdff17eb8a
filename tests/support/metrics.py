"""A worker's /metrics as samples, and sums over them."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from stream.devtools.workers import WorkerProcess, http_get

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(w: WorkerProcess) -> Samples:
    status, body = http_get(f"{w.url}/metrics")
    assert status == 200, f"{w.name} /metrics answered {status}"
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        v
        for (n, ls), v in samples.items()
        if n == name and all(dict(ls).get(k) == val for k, val in labels.items())
    )
