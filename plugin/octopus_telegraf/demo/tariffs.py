"""The demo account's tariffs and products: its own (Agile, a fixed tariff, Intelligent Octopus Go with
the Charge Cap: a four-rate product, an export tariff, gas) and those the demo compares against (Agile,
Go, Tracker), with the product list the comparisons resolve families from, as the public product
endpoints would answer."""

import os
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlencode, urlsplit

from octopus_telegraf.base.timeutil import HALF_HOUR_NS, LONDON, NS_PER_SECOND, iso_to_ns, london_midnight_ns

DEMO_ORIGIN = "https://demo.octopus-telegraf.invalid"


def _until() -> date:
    """The London date the demo's four weeks end on: today, so that a dashboard's last 7 days show it,
    or OCTO_DEMO_UNTIL (checked by the settings), which the tests pin to 2025-11-03: four weeks over the
    October 2025 clock change, whose 26 October has 50 half-hours."""
    pinned = os.environ.get("OCTO_DEMO_UNTIL", "").strip()
    return date.fromisoformat(pinned) if pinned else datetime.now(LONDON).date()


DEMO_END_DATE = _until()
DEMO_START_DATE = DEMO_END_DATE - timedelta(days=28)
DEMO_START_NS = london_midnight_ns(DEMO_START_DATE)
DEMO_END_NS = london_midnight_ns(DEMO_END_DATE)
DEMO_SWITCH_NS = london_midnight_ns(DEMO_START_DATE + timedelta(days=14))  # Agile -> a fixed tariff
DEMO_IOG_NS = london_midnight_ns(DEMO_START_DATE + timedelta(days=18))  # -> Intelligent Octopus Go, four-rate
RATES_TO_NS = DEMO_END_NS + 3 * 86400 * NS_PER_SECOND  # a few days' prices published ahead of the data
DEMO_SINCE_NS = london_midnight_ns(DEMO_START_DATE - timedelta(days=188))  # the agreements began long before
AGILE = "E-1R-AGILE-24-10-01-A"
FIXED = "E-1R-FIX-12M-25-09-01-A"
IOG = "E-1R-IOG-SMB-VAR-24-10-29-A"  # "1R", but no standard rates: the product links four (SPEC section 8)
IOG_RATES = {"day-unit-rates": 30.37, "night-unit-rates": 6.9, "ev-device-peak-unit-rates": 29.5,
             "ev-device-off-peak-unit-rates": 7.5}  # p/kWh inc VAT; the home's night is 23:30-05:30 London
OUTGOING = "E-1R-OUTGOING-FIX-12M-19-05-13-A"
GAS = "G-1R-FIX-12M-25-09-01-A"
GO = "E-1R-GO-VAR-22-10-14-A"
GO_PEAK, GO_OFF_PEAK = 28.0, 8.5  # p/kWh inc VAT; off-peak 00:30-05:30 London
TRACKER, GAS_TRACKER = "E-1R-SILVER-25-04-11-A", "G-1R-SILVER-25-04-11-A"
AGILE_OUTGOING = "E-1R-AGILE-OUTGOING-19-05-13-A"
FIXED_RATES = {FIXED: 24.86, OUTGOING: 15.0, GAS: 6.29}  # p/kWh inc VAT
STANDING = {AGILE: 48.31, FIXED: 53.21, IOG: 51.2, OUTGOING: 0.0, GAS: 29.6}  # p/day inc VAT
STANDING.update({GO: 49.0, TRACKER: 46.4, GAS_TRACKER: 28.1, AGILE_OUTGOING: 0.0})
PRODUCTS = [  # (product, available from, to): the list /v1/products/ answers from
    ("AGILE-24-10-01", "2024-10-01T00:00:00+01:00", None),
    ("AGILE-FLEX-22-11-25", "2022-11-25T00:00:00Z", "2024-10-01T00:00:00+01:00"),  # retired
    ("GO-VAR-22-10-14", "2022-10-14T00:00:00+01:00", None),
    ("SILVER-25-04-11", "2025-04-11T00:00:00+01:00", None),
    ("INTELLI-VAR-24-10-29", "2024-10-29T00:00:00Z", None),
    ("FIX-12M-25-09-01", "2025-09-01T00:00:00+01:00", None),
    ("OUTGOING-FIX-12M-19-05-13", "2019-05-13T00:00:00+01:00", None),
    ("AGILE-OUTGOING-19-05-13", "2019-05-13T00:00:00+01:00", None),
]


def london_text(ns: int) -> str:
    local = datetime.fromtimestamp(ns // NS_PER_SECOND, tz=timezone.utc).astimezone(LONDON)
    text = local.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text  # as the API writes winter times


def wobble(index: int, salt: int) -> float:
    """A deterministic pseudo-random number in [0, 1) for half-hour `index`."""
    return ((index * 2654435761 + salt * 40503) % 9973) / 9973


def query_of(url: str) -> dict:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def page_of(url: str, rows: list, query: dict, default_size: int) -> dict:
    size = min(int(query.get("page_size", default_size)), 25000)
    page = int(query.get("page", 1))
    more = page * size < len(rows)
    return {"count": len(rows),
            "next": f"{DEMO_ORIGIN}{urlsplit(url).path}?{urlencode({**query, 'page': page + 1})}" if more else None,
            "previous": None, "results": rows[(page - 1) * size: page * size]}


def agile_rate(start_ns: int) -> float:
    """Cheap at night, dear 16:00-19:00, now and then below zero: Agile's shape."""
    local = datetime.fromtimestamp(start_ns // NS_PER_SECOND, tz=timezone.utc).astimezone(LONDON)
    hour = local.hour + local.minute / 60
    base = 4.0 if hour < 6 else 32.0 if 16 <= hour < 19 else 19.0
    swing = (wobble(start_ns // HALF_HOUR_NS, 3) - 0.35) * 14
    return round(base + swing, 2)


def tracker_rate(day: date, gas: bool = False) -> float:
    """Tracker: one price a London day, following the wholesale market."""
    if gas:
        return round(5.6 + 1.2 * (wobble(day.toordinal(), 6) - 0.5), 2)
    return round(21.0 + 6.0 * (wobble(day.toordinal(), 5) - 0.5), 2)


def product_list(url: str) -> dict:
    """`/v1/products/?available_at=`: what was on sale then, 25 a page."""
    query = query_of(url)
    moment = iso_to_ns(query["available_at"]) if "available_at" in query else None
    listed = []
    for code, start, end in PRODUCTS:
        if moment is not None and not (iso_to_ns(start) <= moment and (end is None or moment < iso_to_ns(end))):
            continue
        direction = "EXPORT" if "OUTGOING" in code else "IMPORT"
        listed.append({"code": code, "direction": direction, "full_name": code.title(), "display_name": code.title(),
                       "is_variable": "FIX" not in code, "is_tracker": code.startswith("SILVER"),
                       "is_prepay": False, "is_business": False, "is_restricted": False, "brand": "OCTOPUS_ENERGY",
                       "available_from": start, "available_to": end, "links": []})
    return page_of(url, listed, query, 25)


def product_document(product: str) -> dict | None:
    codes = [code for code in STANDING if code[5:-2] == product]
    if not codes:
        return None
    document = {"code": product, "full_name": product.title()}
    for code in codes:  # one product can sell electricity and gas
        fuel = "gas" if code.startswith("G") else "electricity"
        base = f"{DEMO_ORIGIN}/v1/products/{product}/{fuel}-tariffs/{code}"
        kinds = (*IOG_RATES, "standing-charges") if code == IOG else ("standard-unit-rates", "standing-charges")
        links = [{"href": f"{base}/{kind}/", "method": "GET", "rel": kind.replace("-", "_")} for kind in kinds]
        group = "four_rate_ev_electricity_tariffs" if code == IOG else f"single_register_{fuel}_tariffs"
        document[group] = {"_A": {"direct_debit_monthly": {"code": code, "links": links}}}
    return document


def rates(code: str, kind: str, url: str) -> dict | None:
    query = query_of(url)
    if code not in STANDING or kind not in ("standard-unit-rates", "standing-charges", *(IOG_RATES if code == IOG
                                                                                          else ())):
        return None
    since = DEMO_START_NS - 86400 * NS_PER_SECOND
    if kind == "standing-charges" or code in FIXED_RATES or kind in IOG_RATES:
        value = STANDING[code] if kind == "standing-charges" else IOG_RATES.get(kind) or FIXED_RATES[code]
        rows = [{"value_exc_vat": round(value / 1.05, 4), "value_inc_vat": value,
                 "valid_from": london_text(DEMO_SINCE_NS), "valid_to": None, "payment_method": None}]
    elif code == IOG:  # standard-unit-rates: none, despite the 1R, as Octopus answers
        rows = []
    elif code == GO:  # off-peak 00:30-05:30
        rows = _time_of_use_rows(query, since, 1, 11, GO_OFF_PEAK, GO_PEAK)
    elif code in (TRACKER, GAS_TRACKER):
        rows = _rows(query, since, lambda day: [(london_midnight_ns(day), london_midnight_ns(day + timedelta(days=1)),
                                                  tracker_rate(day, code == GAS_TRACKER))])
    else:  # Agile and Agile Outgoing: a price a half-hour
        start, end = _period(query, since)
        starts = range(start - start % HALF_HOUR_NS, end, HALF_HOUR_NS)
        share = 0.45 if code == AGILE_OUTGOING else 1.0  # export earns about half the import price
        rows = [_row(s, s + HALF_HOUR_NS, round(agile_rate(s) * share, 2)) for s in starts]
    return page_of(url, rows[::-1], query, 100)  # newest first, as the API lists rates


def _period(query: dict, since_ns: int) -> tuple[int, int]:
    start = max(iso_to_ns(query["period_from"]) if "period_from" in query else since_ns, since_ns)
    return start, min(iso_to_ns(query["period_to"]) if "period_to" in query else RATES_TO_NS, RATES_TO_NS)


def _row(low: int, high: int, value: float) -> dict:
    return {"value_exc_vat": round(value / 1.05, 4), "value_inc_vat": value, "valid_from": london_text(low),
            "valid_to": london_text(high), "payment_method": None}


def _rows(query: dict, since_ns: int, periods) -> list[dict]:
    """The rows of `periods(day)` ((from, to, p/kWh) of a London day) that overlap the query, oldest first."""
    start, end = _period(query, since_ns)
    rows = []
    day = datetime.fromtimestamp(start // NS_PER_SECOND, tz=LONDON).date() - timedelta(days=1)
    while london_midnight_ns(day) - 2 * HALF_HOUR_NS < end:
        rows += [_row(low, high, value) for low, high, value in periods(day)
                 if high > start and low < end and low >= since_ns]
        day += timedelta(days=1)
    return rows


def _time_of_use_rows(query: dict, since_ns: int, off_from: int, off_to: int, off_peak: float, peak: float):
    """Two rows a London day: off-peak from `off_from` to `off_to` half-hours after midnight (-1: 23:30 the
    evening before), peak until the next day's off-peak begins."""
    def periods(day):
        midnight, following = london_midnight_ns(day), london_midnight_ns(day + timedelta(days=1))
        return [(midnight + off_from * HALF_HOUR_NS, midnight + off_to * HALF_HOUR_NS, off_peak),
                (midnight + off_to * HALF_HOUR_NS, following + off_from * HALF_HOUR_NS, peak)]

    return _rows(query, since_ns + min(off_from, 0) * HALF_HOUR_NS, periods)
