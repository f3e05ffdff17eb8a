"""The /v1 endpoints (contract §4): overview, timeseries, groups, one group, conversions, shops."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from schemas.fields import valid_shop_id
from schemas.timestamps import utc_text
from stream.dates.clock import Clock
from stream.dates.days import day_bounds_utc, local_date
from stream.dates.periods import Period, PeriodError, buckets, resolve_compare, resolve_period
from stream.http.api import csv_export, experiment, figures, ledger, paging, replies
from stream.http.api.errors import bad_request
from stream.http.api.limits import HeavyQueries
from stream.state import keys
from stream.state.reader import ShopView, StateReader


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return utc_text(datetime.fromtimestamp(ms / 1000, UTC))


class Handlers:
    def __init__(
        self,
        reader: StateReader,
        clock: Clock,
        retention_days: int,
        *,
        max_range_days: int,
        heavy: HeavyQueries,
    ) -> None:
        self.reader = reader
        self.clock = clock
        self.max_days = min(retention_days, max_range_days)
        self.heavy = heavy

    # -- shared ----------------------------------------------------------------------------
    async def _context(self, request: web.Request) -> tuple[ShopView, Period, Period | None]:
        shop_id = request.match_info["shop_id"]
        if not valid_shop_id(shop_id):
            raise bad_request(
                "bad_shop_id", "shop ids are 1-128 chars of [A-Za-z0-9._:-]", "shop_id"
            )
        shop = await self.reader.shop(shop_id)
        today = local_date(shop.timezone, self.clock())
        try:
            period = resolve_period(
                request.query, today=today, week_start=shop.week_start, retention_days=self.max_days
            )
            compare = resolve_compare(
                request.query, period, week_start=shop.week_start, retention_days=self.max_days
            )
            for name, span in (("period", period), ("compare", compare)):
                if span is not None and span.days > self.max_days:
                    raise PeriodError(
                        "range_too_long", name, f"a range may span at most {self.max_days} days"
                    )
        except PeriodError as exc:
            raise bad_request(exc.code, exc.message, exc.param) from None
        self._take_heavy(request, period.days + (compare.days if compare is not None else 0))
        return shop, period, compare

    def _take_heavy(self, request: web.Request, days: int) -> None:
        """One heavy-query slot a request, taken in the token's share (the limits middleware
        gives it back to the same token)."""
        if not request.get("heavy"):
            request["heavy"] = self.heavy.enter(days, request.get("owner"))

    async def _metrics(self, shop: ShopView, period: Period) -> dict[str, Any]:
        days = period.dates()
        raw = await self.reader.sum_days(shop.shop_id, days)
        unique = await self.reader.unique_upgraders(shop.shop_id, days)
        active = await self.reader.active_subscribers(shop.shop_id, period.start)
        return figures.metrics(raw, unique_upgraders=unique, active_subscribers=active)

    def _compare_doc(
        self, shop: ShopView, compare: Period, current: dict[str, Any], base: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "period": compare.to_json(shop.timezone),
            "metrics": base,
            "change": figures.change(current, base),
        }

    # -- endpoints --------------------------------------------------------------------------
    async def shops(self, request: web.Request) -> web.Response:
        grant = request.get("grant")
        limit = paging.limit(request.query.get("limit"), paging.SHOPS_PAGE, paging.SHOPS_PAGE_MAX)
        after = paging.decode_shop(request.query.get("cursor"))
        only = None if grant is None or grant.all_shops else grant.shops
        shops, following = await self.reader.shops(after, limit, only)
        doc = {
            "shops": [s.to_json() for s in shops],
            "next_cursor": paging.encode_shop(following) if following is not None else None,
        }
        return web.json_response(doc, dumps=_dumps)

    async def overview(self, request: web.Request) -> web.Response:
        shop, doc = await self.overview_doc(request)
        rows = csv_export.overview_rows(doc, shop.currency)
        return replies.reply(request, doc, "overview", rows)

    async def overview_doc(self, request: web.Request) -> tuple[ShopView, dict[str, Any]]:
        shop, period, compare = await self._context(request)
        current = await self._metrics(shop, period)
        doc: dict[str, Any] = {
            "shop_id": shop.shop_id,
            "period": period.to_json(shop.timezone),
            "metrics": current,
            "compare": None,
            "as_of": _iso(int(self.clock().timestamp() * 1000)),
            "last_event_at": _iso(await self.reader.last_event_ms(shop.shop_id)),
        }
        if compare is not None:
            doc["compare"] = self._compare_doc(
                shop, compare, current, await self._metrics(shop, compare)
            )
        return shop, doc

    async def timeseries(self, request: web.Request) -> web.Response:
        shop, period, compare = await self._context(request)
        interval = request.query.get("interval") or "day"
        try:
            doc: dict[str, Any] = {
                "shop_id": shop.shop_id,
                "period": period.to_json(shop.timezone),
                "interval": interval,
                "points": await self._points(shop, period, interval),
                "compare": None,
            }
            if compare is not None:
                doc["compare"] = {
                    "period": compare.to_json(shop.timezone),
                    "points": await self._points(shop, compare, interval),
                }
        except PeriodError as exc:
            raise bad_request(exc.code, exc.message, exc.param) from None
        rows = csv_export.timeseries_rows(doc, shop.currency)
        return replies.reply(request, doc, "timeseries", rows)

    async def _points(self, shop: ShopView, period: Period, interval: str) -> list[dict[str, Any]]:
        spans = buckets(period, interval, shop.week_start)
        rows = await self.reader.per_day(shop.shop_id, period.dates())
        points = []
        i = 0
        for start, end in spans:
            raw: dict[str, int] = {}
            for _ in range((end - start).days + 1):
                figures.add(raw, rows[i])
                i += 1
            points.append(
                {
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "metrics": figures.metrics(raw),
                }
            )
        return points

    async def groups(self, request: web.Request) -> web.Response:
        shop, period, doc = await self.groups_doc(request)
        if replies.wants_csv(request):
            control = request.query.get("control") or None
            table: list[csv_export.Row] = [csv_export.GROUP_HEADER]
            for row in doc["groups"]:
                detail = await self._group_doc(request, shop, period, row["group_id"], control)
                table.extend(csv_export.group_rows(detail, shop.currency))
            return replies.reply(request, doc, "groups", table)
        return web.json_response(doc, dumps=_dumps)

    async def groups_doc(self, request: web.Request) -> tuple[ShopView, Period, dict[str, Any]]:
        shop, period, compare = await self._context(request)
        sums = await self.reader.sum_groups(shop.shop_id, period.dates())
        base = await self.reader.sum_groups(shop.shop_id, compare.dates()) if compare else {}
        rows = []
        for group_id, raw in sums.items():
            row: dict[str, Any] = {"group_id": group_id, "metrics": figures.metrics(raw)}
            if compare is not None:
                row["change"] = figures.change(
                    row["metrics"], figures.metrics(base.get(group_id, {}))
                )
            rows.append(row)
        rows.sort(
            key=lambda r: (
                -r["metrics"]["conversions"],
                -r["metrics"]["banner_views"],
                r["group_id"],
            )
        )
        doc = {
            "shop_id": shop.shop_id,
            "period": period.to_json(shop.timezone),
            "groups": rows,
            "compare": compare.to_json(shop.timezone) if compare else None,
        }
        return shop, period, doc

    async def group(self, request: web.Request) -> web.Response:
        shop, period, _compare = await self._context(request)
        group_id = request.match_info["group_id"]
        if not 0 < len(group_id) <= 128:
            raise bad_request("bad_group_id", "group ids are 1-128 characters", "group_id")
        control = request.query.get("control") or None
        if control is not None and len(control) > 128:
            raise bad_request("bad_control", "control is a variation id of 1-128 chars", "control")
        doc = await self._group_doc(request, shop, period, group_id, control)
        table = [csv_export.GROUP_HEADER, *csv_export.group_rows(doc, shop.currency)]
        return replies.reply(request, doc, "group-" + group_id, table)

    async def _group_doc(
        self,
        request: web.Request,
        shop: ShopView,
        period: Period,
        group_id: str,
        control: str | None,
    ) -> dict[str, Any]:
        days = period.dates()
        variations = await self.reader.sum_variations(shop.shop_id, days, group_id)
        transitions = await self.reader.sum_transitions(shop.shop_id, days, group_id)
        run, exposures, anonymous = await self._run(request, shop, group_id)
        stats, decision = experiment.decision(
            exposures, list(variations), control, shop.groups.get(group_id), run
        )
        decision["experiment"]["views_without_subscriber"] = anonymous
        total: dict[str, int] = {}
        out = []
        for variation_id in sorted(stats):
            raw = variations.get(variation_id, {})
            figures.add(total, raw)
            moves = [
                {"from_plan": src, "to_plan": dst, **figures.transition_metrics(values)}
                for (var, src, dst), values in sorted(transitions.items())
                if var == variation_id
            ]
            moves.sort(key=lambda m: -m["conversions"])
            out.append(
                {
                    "variation_id": variation_id,
                    "metrics": figures.metrics(raw),
                    "stats": stats[variation_id],
                    "transitions": moves,
                }
            )
        return {
            "shop_id": shop.shop_id,
            "period": period.to_json(shop.timezone),
            "group_id": group_id,
            "metrics": figures.metrics(total),
            **decision,
            "variations": out,
        }

    async def _run(
        self, request: web.Request, shop: ShopView, group_id: str
    ) -> tuple[experiment.Run, dict[str, dict[str, float]], int]:
        """The experiment's run, its exposures summed per variation, and the views of its days
        left out of it (no subscriber_id). Its days count for the heavy-query bound too."""
        today = local_date(shop.timezone, self.clock())
        first = await self.reader.experiment_start(shop.shop_id, group_id)
        run = experiment.run_of(shop.experiments.get(group_id), first, today, self.max_days)
        if run.start is None:  # no run yet (days is 0 exactly then)
            return run, {}, 0
        self._take_heavy(request, run.days)
        days = [date.fromordinal(run.start.toordinal() + i) for i in range(run.days)]
        exposures = await self.reader.sum_exposures(shop.shop_id, days, group_id)
        views = await self.reader.sum_variations(shop.shop_id, days, group_id)
        anonymous = sum(v.get(keys.ANONYMOUS_VIEWS, 0) for v in views.values())
        return run, exposures, anonymous

    async def conversions(self, request: web.Request) -> web.StreamResponse:
        shop, period, _compare = await self._context(request)
        lo = day_bounds_utc(shop.timezone, period.start)[0]
        hi = day_bounds_utc(shop.timezone, period.end)[1]
        span = (int(lo.timestamp() * 1000), int(hi.timestamp() * 1000) - 1)
        if replies.wants_csv(request):
            period_doc = period.to_json(shop.timezone)
            return await ledger.stream_csv(request, self.reader, shop, period_doc, span)
        limit = paging.limit(request.query.get("limit"), paging.LEDGER_PAGE, paging.LEDGER_PAGE_MAX)
        after = paging.decode_ledger(request.query.get("cursor"))
        items, cursor = await self.reader.ledger_page(shop.shop_id, *span, after, limit)
        doc = {
            "shop_id": shop.shop_id,
            "period": period.to_json(shop.timezone),
            "items": ledger.with_local_time(items, shop),
            "next_cursor": paging.encode_ledger(cursor) if cursor else None,
        }
        return web.json_response(doc, dumps=_dumps)


_dumps = replies.dumps
