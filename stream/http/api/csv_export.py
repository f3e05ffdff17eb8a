"""CSV bodies of the /v1 answers (contract §4.3). Pure: documents in, rows out.

Money is in major units (``12.50``) beside a ``currency`` column; a document with money in
several currencies gives one row per currency (its counts repeat on each row). Dates are the
shop's local dates; ledger times are shop-local with their offset."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

# ISO 4217 minor-unit exponents other than 2.
_EXPONENTS = {
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}
COUNTS = ("banner_views", "banner_clicks", "conversions", "downgrades")
RATES = ("click_through_rate", "conversion_rate", "offer_conversion_rate")
MONEY = ("revenue", "expansion_mrr", "contraction_mrr", "net_mrr", "net_arr")
Row = Sequence[Any]


def major(minor: int, currency: str) -> str:
    digits = _EXPONENTS.get(currency, 2)
    return f"{Decimal(minor).scaleb(-digits):.{digits}f}"


def major_fraction(minor: float, currency: str) -> str:
    """A per-unit amount (revenue per subscriber): major units with four more decimals."""
    digits = _EXPONENTS.get(currency, 2)
    return f"{minor / 10**digits:.{digits + 4}f}"


def text(rows: Iterable[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if cell is None else safe_cell(cell) for cell in row])
    return out.getvalue()


# OWASP "CSV Injection": a cell starting with one of these is read as a formula by spreadsheets
# (``=HYPERLINK(...)``, ``+cmd|...``); ids from a public key's events reach the exports.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def safe_cell(cell: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, with a ``'`` before it (shown as
    text); numbers, negative amounts included, stay numbers."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_START) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def _currencies(metrics: Mapping[str, Any], fallback: str | None) -> list[str]:
    found = {cur for name in MONEY for cur in metrics.get(name + "_minor", {})}
    return sorted(found) or [fallback or ""]


def _money(metrics: Mapping[str, Any], currency: str) -> list[str]:
    return [
        major(metrics.get(name + "_minor", {}).get(currency, 0), currency) if currency else "0"
        for name in MONEY
    ]


def _metric_cells(metrics: Mapping[str, Any], currency: str) -> list[Any]:
    return [
        *(metrics[c] for c in COUNTS),
        *(metrics[r] for r in RATES),
        currency,
        *_money(metrics, currency),
    ]


METRIC_HEADER = [*COUNTS, *RATES, "currency", *MONEY]


def overview_rows(doc: Mapping[str, Any], currency: str | None) -> Iterator[Row]:
    period, m = doc["period"], doc["metrics"]
    yield ["shop_id", "from", "to", "timezone", *METRIC_HEADER, "unique_upgraders", "upgrade_rate"]
    for cur in _currencies(m, currency):
        yield [
            doc["shop_id"],
            period["from"],
            period["to"],
            period["timezone"],
            *_metric_cells(m, cur),
            m.get("unique_upgraders"),
            m.get("upgrade_rate"),
        ]


def timeseries_rows(doc: Mapping[str, Any], currency: str | None) -> Iterator[Row]:
    yield ["start", "end", *METRIC_HEADER]
    for point in doc["points"]:
        for cur in _currencies(point["metrics"], currency):
            yield [point["start"], point["end"], *_metric_cells(point["metrics"], cur)]


GROUP_HEADER = [
    "group_id",
    "variation_id",
    "is_control",
    *METRIC_HEADER,
    "exposed_subscribers",
    "converted_subscribers",
    "subscriber_conversion_rate",
    "lift",
    "diff_ci95_low",
    "diff_ci95_high",
    "p_value",
    "p_value_adjusted",
    "enough_data",
    "significant",
    "revenue_per_subscriber",
    "revenue_diff_ci95_low",
    "revenue_diff_ci95_high",
    "downgrade_guardrail_tripped",
    "srm_p_value",
    "srm_mismatch",
]


def group_rows(doc: Mapping[str, Any], currency: str | None) -> Iterator[Row]:
    """Rows of one group document (groups/{group_id}); no header. The experiment's figures
    (exposed subscribers over its run) beside the period's metrics."""
    srm = doc.get("srm") or {}
    for v in doc["variations"]:
        s = v["stats"]
        ci = s["diff_ci95"] or [None, None]
        for cur in _currencies(v["metrics"], currency):
            money = s["revenue_per_subscriber"].get(cur) or {}
            mean, rci = money.get("mean"), money.get("diff_ci95") or [None, None]
            yield [
                doc["group_id"],
                v["variation_id"],
                v["variation_id"] == doc["control_variation_id"],
                *_metric_cells(v["metrics"], cur),
                s["exposed_subscribers"],
                s["converted_subscribers"],
                s["conversion_rate"],
                s["lift"],
                ci[0],
                ci[1],
                s["p_value"],
                s["p_value_adjusted"],
                s["enough_data"],
                s["significant"],
                None if mean is None else major_fraction(mean, cur),
                None if rci[0] is None else major_fraction(rci[0], cur),
                None if rci[1] is None else major_fraction(rci[1], cur),
                s["guardrail_tripped"],
                srm.get("p_value"),
                srm.get("mismatch"),
            ]


CONVERSION_HEADER = [
    "event_id",
    "local_time",
    "occurred_at_utc",
    "subscriber_id",
    "order_id",
    "group_id",
    "variation_id",
    "from_products",
    "from_selling_plan",
    "to_products",
    "to_selling_plan",
    "currency",
    "revenue",
    "from_mrr",
    "to_mrr",
]


def conversion_row(item: Mapping[str, Any]) -> Row:
    cur = item["currency"]
    src, dst = item["from"], item["to"]
    return [
        item["event_id"],
        item["local_time"],
        item["occurred_at"],
        item["subscriber_id"],
        item["order_id"],
        item["group_id"],
        item["variation_id"],
        " ".join(src["product_ids"]),
        src["selling_plan_id"],
        " ".join(dst["product_ids"]),
        dst["selling_plan_id"],
        cur,
        major(item["revenue_minor"], cur),
        major(src["mrr_minor"], cur),
        major(dst["mrr_minor"], cur),
    ]
