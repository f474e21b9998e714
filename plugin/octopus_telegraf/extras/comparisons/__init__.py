"""Tariff comparison: what your half-hours would have cost elsewhere. The catalogue (the product list,
families, regions, sale windows) and the comparisons, each with its own cursor behind the REST half.

May import: the extras' boundary, core, config, prices, api, base; no other extra."""
