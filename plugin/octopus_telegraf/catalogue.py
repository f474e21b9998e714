"""What Octopus sold, when: the product families of OCTO_COMPARE, the products on sale on a London day
(`GET /v1/products/?available_at=`, their sale windows kept in the state), and a product's tariff code
for a region (`GET /v1/products/{code}/`, through the rate book's per-process cache)."""

import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from . import log
from .api import ApiError
from .enrichment import ShapeError
from .timeutil import iso_to_ns, ns_to_utc_z

# family -> (does a product code belong to it, direction, fuels it applies to)
FAMILIES = {
    "agile": (lambda c: c.startswith("AGILE-") and "OUTGOING" not in c, "import", ("electricity",)),
    "go": (lambda c: c.startswith("GO-"), "import", ("electricity",)),
    "intelligent": (lambda c: c.startswith(("INTELLI-", "IOG-")), "import", ("electricity",)),
    "cosy": (lambda c: c.startswith("COSY-"), "import", ("electricity",)),
    "flux": (lambda c: c.startswith("FLUX-IMPORT-"), "import", ("electricity",)),
    "tracker": (lambda c: c.startswith("SILVER-"), "import", ("electricity", "gas")),
    "flexible": (lambda c: c.startswith("VAR-"), "import", ("electricity", "gas")),
    "agile_outgoing": (lambda c: c.startswith("AGILE-OUTGOING-"), "export", ("electricity",)),
    "outgoing_fixed": (lambda c: c.startswith("OUTGOING-") and "FIX" in c, "export", ("electricity",)),
    "flux_export": (lambda c: c.startswith("FLUX-EXPORT-"), "export", ("electricity",)),
}
NAME = re.compile(r"[a-z0-9_]+")
TARIFF_CODE = re.compile(r"[EG]-[0-9A-Z]+-[0-9A-Z]+(?:-[0-9A-Z]+)*-[A-P]")
PRODUCT_CODE = re.compile(r"[0-9A-Z]+(?:-[0-9A-Z]+)+")
PAYMENT_BLOCKS = ("direct_debit_monthly", "varying", "direct_debit_quarterly", "prepayment")
LIST_PAUSE_SECONDS = 60  # shorter than any gather interval: the next gather asks again
LIST_QUERY = {"brand": "OCTOPUS_ENERGY", "is_business": "false", "is_prepay": "false", "page_size": 100}


@dataclass(frozen=True)
class Comparison:
    name: str  # the `compare` tag
    family: str | None = None
    product: str | None = None
    tariff: str | None = None

    def direction(self, product: str | None = None) -> str:
        """Who it is for: a family's direction, else what the product code says."""
        if self.family:
            return FAMILIES[self.family][1]
        code = product or self.product or self.tariff
        return "export" if "OUTGOING" in code or "EXPORT" in code else "import"


def parse_compare(text: str) -> list[Comparison]:
    """`agile=agile,go=GO-VAR-22-10-14,e7=E-2R-VAR-22-11-01-C` -> comparisons. Raises ValueError."""
    comparisons, names = [], set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, spec = (piece.strip() for piece in item.partition("="))
        if not NAME.fullmatch(name):
            raise ValueError(f"{item!r}: the name before `=` must be lower-case letters, digits or _")
        if not spec:
            raise ValueError(f"{item!r}: a family, product code or tariff code must follow `=`")
        if name in names:
            raise ValueError(f"the name {name!r} is given twice")
        names.add(name)
        if spec.lower() in FAMILIES:
            comparisons.append(Comparison(name, family=spec.lower()))
        elif TARIFF_CODE.fullmatch(spec):
            comparisons.append(Comparison(name, tariff=spec))
        elif PRODUCT_CODE.fullmatch(spec):
            comparisons.append(Comparison(name, product=spec))
        else:
            raise ValueError(f"{item!r}: {spec!r} is not a family ({', '.join(FAMILIES)}), a product code "
                             f"(AGILE-24-10-01) or a tariff code (E-1R-AGILE-24-10-01-C)")
    return comparisons


class Catalogue:
    """Products on sale by day. `store` lives in the state: {"windows": {code: [from, to or None]},
    "today": London midnight of the last look at today's list, "asked": [days asked]}."""

    def __init__(self, client, store: dict):
        self.client = client
        self.store = store
        self.windows: dict[str, list] = store.setdefault("windows", {})
        self.asked: set[int] = set(store.setdefault("asked", []))
        self.failed_until = 0.0  # monotonic

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
        return found

    def _choose(self, family: str, day_ns: int) -> str | None:
        belongs = FAMILIES[family][0]
        on_sale = [(("-BB-" not in code), start, code) for code, (start, end) in self.windows.items()
                   if belongs(code) and start <= day_ns and (end is None or day_ns < end)]
        return max(on_sale)[2] if on_sale else None

    def _learn(self, day_ns: int) -> None:
        """Ask the list of `day_ns`. A failed list is not asked again by the next comparison of the same
        gather: they share it, so one failure is one request, not one per comparison."""
        if time.monotonic() < self.failed_until:
            raise ApiError("the product list failed a moment ago; it is asked again at the next gather")
        url = self.client.url("/v1/products/") + "?" + urlencode({**LIST_QUERY, "available_at": ns_to_utc_z(day_ns)})
        learned = 0
        try:
            for results in self.client.pages(url, authenticated=False):
                for product in results:
                    window = _window(product)
                    if window is not None:
                        self.windows[product["code"]] = window
                        learned += 1
        except ApiError as exc:  # a Retry-After longer than the pause is honoured too
            self.failed_until = max(time.monotonic() + LIST_PAUSE_SECONDS, exc.wait_until or 0.0)
            raise
        self.asked.add(day_ns)
        self.store["asked"] = sorted(self.asked)[-400:]  # about a year of days asked: the rest are covered
        log.debug(f"products on sale {ns_to_utc_z(day_ns)}: {learned}")


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
