"""The product families OCTO_COMPARE names and the shapes of product and tariff codes: what a product is,
from its code alone (no request). The settings parse OCTO_COMPARE with it; the catalogue finds the
products of a family on sale."""

import re
from dataclasses import dataclass

from octopus_telegraf.base.log import shown

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
            raise ValueError(f"{shown(item)}: the name before `=` must be lower-case letters, digits or _")
        if not spec:
            raise ValueError(f"{shown(item)}: a family, product code or tariff code must follow `=`")
        if name in names:
            raise ValueError(f"the name {shown(name)} is given twice")
        names.add(name)
        if spec.lower() in FAMILIES:
            comparisons.append(Comparison(name, family=spec.lower()))
        elif TARIFF_CODE.fullmatch(spec):
            comparisons.append(Comparison(name, tariff=spec))
        elif PRODUCT_CODE.fullmatch(spec):
            comparisons.append(Comparison(name, product=spec))
        else:
            raise ValueError(f"{shown(item)}: {shown(spec)} is not a family ({', '.join(FAMILIES)}), a product code "
                             f"(AGILE-24-10-01) or a tariff code (E-1R-AGILE-24-10-01-C)")
    return comparisons
