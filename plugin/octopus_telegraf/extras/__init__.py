"""The optional enrichments, each behind the one boundary (enrichment.py): any failure or odd answer is
one log line per episode and a wait; a share of the gather's time; points only from what the REST half
left. Dispatches, devices and planned dispatches (flex), Octoplus events, the Home Mini (live), the
tariff comparisons.

May import: core, config, prices, api, base. The extras never import one another (an independence
contract): what two of them share lives below them."""
