"""What Octopus sold, when: the product families of OCTO_COMPARE, the products on sale on a London day
(`GET /v1/products/?available_at=`, their sale windows kept in the state), and a product's tariff code
for a region (`GET /v1/products/{code}/`, through the rate book's per-process cache)."""

from urllib.parse import urlencode

from octopus_telegraf.api.faults import ApiError, OutOfTime
from octopus_telegraf.api.shapes import ShapeError
from octopus_telegraf.base import log
from octopus_telegraf.base.timeutil import LARGEST_NS, iso_to_ns, ns_to_utc_z
from octopus_telegraf.core.state import drop_damaged
from octopus_telegraf.extras.enrichment import Enrichment
from octopus_telegraf.prices.families import FAMILIES, PRODUCT_CODE, TARIFF_CODE

PAYMENT_BLOCKS = ("direct_debit_monthly", "varying", "direct_debit_quarterly", "prepayment")
LIST_PAGES = 20  # a day's list is a few pages of 100; more is a loop or a fault, and nothing of it is kept
LISTS_PER_GATHER = 5  # a backfill over days no window covers asks a few lists a gather, not hundreds at once
RUN_LIMIT_NS = 4000 * 86400 * 10**9  # a run of days of one tariff longer than ten years is damage
KEPT_WINDOWS = 2000  # sale windows kept: every product of several years
LIST_QUERY = {"brand": "OCTOPUS_ENERGY", "is_business": "false", "is_prepay": "false", "page_size": 100}


class Catalogue:
    """Products on sale by day. `store` lives in the state: {"windows": {code: [from, to or None]},
    "today": London midnight of the last look at today's list, "asked": [days asked]}."""

    def __init__(self, client, store: dict):
        self.client = client
        self.store = store  # checked by checked_store()
        self.windows: dict[str, list] = store["windows"]
        self.asked: set[int] = set(store["asked"])
        self.lists_left = LISTS_PER_GATHER
        # the list is shared by every comparison: its faults are one episode of its own, and the comparisons
        # that meet it while it waits are told quietly (OutOfTime: the next gather)
        self.boundary = Enrichment("the product list (tariff comparisons)")

    def start_gather(self) -> None:
        self.lists_left = LISTS_PER_GATHER

    def product_on(self, family: str, day_ns: int, today_ns: int) -> str | None:
        """The family's product on sale on the London day `day_ns`: the newest (by available_from), a code
        without -BB- before its twin with it. The list is asked for a day no known window covers, and for
        today once a London day (a new product appears there first). Raises ApiError or ShapeError."""
        if day_ns >= today_ns and self.store.get("today") != today_ns:
            self._learn(today_ns)
            self.store["today"] = today_ns
        found = self._choose(family, day_ns)
        if found is None and day_ns not in self.asked:
            self._learn(day_ns)
            found = self._choose(family, day_ns)
        if found is None and not any(FAMILIES[family][0](code) for code in self.windows):
            # a list that never shows the family may be a passing fault: asked again later, never kept
            raise MissingFact(f"the product list shows no {family} product (yet)")
        return found

    def _choose(self, family: str, day_ns: int) -> str | None:
        belongs = FAMILIES[family][0]
        on_sale = [(("-BB-" not in code), start, code) for code, (start, end) in self.windows.items()
                   if belongs(code) and start <= day_ns and (end is None or day_ns < end)]
        return max(on_sale)[2] if on_sale else None

    def _learn(self, day_ns: int) -> None:
        """Ask the list of `day_ns`. A failed list is not asked again by the next comparison of the same
        gather: they share it, so one failure is one request, not one per comparison."""
        if not self.boundary.ready():
            raise OutOfTime("the product list failed a moment ago; it is asked again later")
        if self.lists_left <= 0:
            raise OutOfTime(f"{LISTS_PER_GATHER} product lists asked in this gather; the rest follow")
        self.lists_left -= 1
        learned = self.boundary.run(self._list, day_ns)
        if learned is None:
            self.lists_left = 0  # not again in this gather, whichever comparison asks
            raise OutOfTime("the product list did not answer; it is asked again later")
        self.windows.update(learned)
        for code in sorted(self.windows, key=lambda c: self.windows[c][0])[:-KEPT_WINDOWS]:
            del self.windows[code]
        self.asked.add(day_ns)
        self.store["asked"] = sorted(self.asked)[-400:]  # about a year of days asked: the rest are covered
        log.debug(f"products on sale {ns_to_utc_z(day_ns)}: {len(learned)}")

    def _list(self, day_ns: int) -> dict[str, list]:
        """The products on sale that day: kept only once the whole list has come (a list cut short, or one
        with nothing in it, is no answer)."""
        url = self.client.url("/v1/products/") + "?" + urlencode({**LIST_QUERY, "available_at": ns_to_utc_z(day_ns)})
        learned: dict[str, list] = {}
        for results in self.client.pages(url, authenticated=False, max_pages=LIST_PAGES):
            for product in results:
                window = _window(product)
                if window is not None:
                    learned[product["code"]] = window
        if not learned:
            raise MissingFact(f"the product list of {ns_to_utc_z(day_ns)[:10]} had no products in it")
        return learned


class MissingFact(ApiError):
    """A negative answer that may be a passing fault: never kept, asked again after a back-off."""


def checked_store(store: dict) -> dict:
    """The state's `compare` section with every part of the shape its readers expect; a damaged part is
    one W! and dropped (asked again), never a crash at every start."""
    checks = {
        "windows": lambda v: isinstance(v, dict) and all(
            isinstance(k, str) and isinstance(w, list) and len(w) == 2 and _ns_ok(w[0]) and (w[1] is None or
                                                                                           _ns_ok(w[1]))
            for k, w in v.items()),
        "asked": lambda v: isinstance(v, list) and all(_ns_ok(d) for d in v),
        "gsp": lambda v: isinstance(v, dict) and all(isinstance(x, str) and len(x) == 1 and "A" <= x <= "P"
                                                     for x in v.values()),
        "days": lambda v: isinstance(v, dict) and all(
            isinstance(k, str) and len(k.split("|")) == 3 and isinstance(runs, list) and all(
                isinstance(r, list) and len(r) == 3 and _ns_ok(r[0]) and _ns_ok(r[1]) and r[0] <= r[1]
                and r[1] - r[0] < RUN_LIMIT_NS and isinstance(r[2], str) for r in runs) for k, runs in v.items()),
    }
    days = store.get("days")
    if isinstance(days, dict):  # the format of before 0.2: [day, code] pairs, one a day
        for key, pairs in days.items():
            if isinstance(pairs, list) and all(isinstance(p, list) and len(p) == 2 for p in pairs):
                days[key] = [[day, day, code] for day, code in pairs if code is not None]
    drop_damaged(store, checks, "the tariff comparisons'", lambda name: [] if name == "asked" else {})
    if "today" in store and not _ns_ok(store["today"]):
        del store["today"]
    return store


def _ns_ok(value) -> bool:
    return type(value) is int and 0 <= value < LARGEST_NS


def _window(product) -> list | None:
    """[available_from ns, available_to ns or None] of a product of the list; None to skip it (restricted,
    or not of the list's shape)."""
    if not isinstance(product, dict) or product.get("is_restricted") is True:
        return None
    code = product.get("code")
    if not isinstance(code, str) or not PRODUCT_CODE.fullmatch(code):
        return None
    try:
        start = iso_to_ns(product["available_from"]) if product.get("available_from") else 0
        end = iso_to_ns(product["available_to"]) if product.get("available_to") else None
    except (TypeError, ValueError, OverflowError):
        return None
    return [start, end]


def tariff_for(document, fuel: str, region: str, dual: bool) -> str | None:
    """The tariff code a product sells in `region` for `fuel`: dual-register when asked and offered, else
    single, else the four-rate EV group (an intelligent product may list only that)."""
    if not isinstance(document, dict):
        return None
    groups = ("single_register_gas_tariffs",) if fuel == "gas" else (
        ("dual_register_electricity_tariffs",) * dual + ("single_register_electricity_tariffs",
                                                          "four_rate_ev_electricity_tariffs"))
    for group in groups:
        blocks = (document.get(group) or {})
        if not isinstance(blocks, dict):
            raise ShapeError(f"product {document.get('code')}: {group} is not an object")
        regional = blocks.get(f"_{region}")
        if not isinstance(regional, dict):
            continue
        ordered = [regional[k] for k in PAYMENT_BLOCKS if k in regional] + list(regional.values())
        for block in ordered:
            code = block.get("code") if isinstance(block, dict) else None
            if isinstance(code, str) and TARIFF_CODE.fullmatch(code):
                return code
    return None


def sells(document, fuel: str) -> bool:
    groups = ("single_register_gas_tariffs",) if fuel == "gas" else (
        "single_register_electricity_tariffs", "dual_register_electricity_tariffs", "four_rate_ev_electricity_tariffs")
    return isinstance(document, dict) and any(document.get(group) for group in groups)
