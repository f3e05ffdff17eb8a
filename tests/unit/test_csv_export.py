"""CSV bodies: money in major units by each currency's ISO 4217 exponent, one row per currency,
shop-local ledger times as given."""

from __future__ import annotations

import csv
import io

from stream.http.api import csv_export


def test_major_units_follow_the_currency_exponent() -> None:
    assert csv_export.major(1250, "EUR") == "12.50"
    assert csv_export.major(-5, "USD") == "-0.05"
    assert csv_export.major(1250, "JPY") == "1250"
    assert csv_export.major(1250, "KWD") == "1.250"
    assert csv_export.major_fraction(54.0, "NZD") == "0.540000"


def _metrics(**money: dict[str, int]) -> dict[str, object]:
    out: dict[str, object] = {k: 1 for k in csv_export.COUNTS}
    out.update({r: 0.5 for r in csv_export.RATES})
    for name in csv_export.MONEY:
        out[name + "_minor"] = money.get(name, {})
    return out


def test_a_row_per_currency_and_the_shop_currency_when_there_is_no_money() -> None:
    period = {"from": "a", "to": "b", "timezone": "UTC"}
    doc = {"shop_id": "s", "period": period, "metrics": _metrics(revenue={"EUR": 100, "USD": 250})}
    rows = list(csv.reader(io.StringIO(csv_export.text(csv_export.overview_rows(doc, "USD")))))
    header, body = rows[0], rows[1:]
    assert [r[header.index("currency")] for r in body] == ["EUR", "USD"]
    assert [r[header.index("revenue")] for r in body] == ["1.00", "2.50"]
    empty = {"shop_id": "s", "period": period, "metrics": _metrics()}
    rows = list(csv.reader(io.StringIO(csv_export.text(csv_export.overview_rows(empty, "JPY")))))
    assert rows[1][rows[0].index("currency")] == "JPY"
    assert rows[1][rows[0].index("revenue")] == "0"


def test_conversion_row() -> None:
    item = {
        "event_id": "e1",
        "local_time": "x-local",
        "occurred_at": "x-utc",
        "subscriber_id": "sub",
        "order_id": None,
        "group_id": "g",
        "variation_id": "v",
        "from": {"product_ids": ["pro"], "selling_plan_id": "monthly", "mrr_minor": 1000},
        "to": {"product_ids": ["pro", "addon"], "selling_plan_id": "annual", "mrr_minor": 1500},
        "revenue_minor": 1200,
        "currency": "NZD",
    }
    row = dict(zip(csv_export.CONVERSION_HEADER, csv_export.conversion_row(item), strict=True))
    assert row["local_time"] == "x-local" and row["to_products"] == "pro addon"
    assert (row["revenue"], row["from_mrr"], row["to_mrr"]) == ("12.00", "10.00", "15.00")
    assert csv_export.text([[None, "a,b"]]) == ',"a,b"\r\n'


def test_cells_a_spreadsheet_would_run_are_shown_as_text() -> None:
    """OWASP CSV injection: ids from a public key's events reach the exports."""
    row = [
        '=HYPERLINK("http://evil","x")',
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1)",
        "\tx",
        "\rx",
        "-12.50",
        "-3",
        "plain-id",
        7,
        -1.5,
    ]
    (cells,) = csv.reader(io.StringIO(csv_export.text([row])))
    assert cells[:6] == ["'" + str(c) for c in row[:6]]
    assert cells[6:] == ["-12.50", "-3", "plain-id", "7", "-1.5"]


def test_the_download_name_cannot_break_or_add_to_its_header() -> None:
    from stream.http.api.replies import csv_headers

    for name, plain in [
        ("s-group-x\ny-a-b.csv", "s-group-x_y-a-b.csv"),
        ('s-group-x"; filename="evil.html-a-b.csv', "s-group-x___filename__evil.html-a-b.csv"),
        ("s-group-gr\u00fcn-a-b.csv", "s-group-gr_n-a-b.csv"),
    ]:
        header = csv_headers(name)["Content-Disposition"]
        assert header.startswith(f"attachment; filename=\"{plain}\"; filename*=UTF-8''")
        assert header.count("filename=") == 1 and "\n" not in header and "\r" not in header
        assert header.count('"') == 2
    assert csv_headers("gr\u00fcn")["Content-Disposition"].endswith("UTF-8''gr%C3%BCn")
