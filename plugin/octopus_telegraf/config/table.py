"""The table of settings: every variable the plugin reads, its default and its help (the README's table,
`--help` and the flags come from it), and the names that are not for the plugin. Nothing here parses
a value: that is values.py."""

import difflib

# name, default, help. Every one gets a flag: OCTO_LOOP_TIME -> --loop-time, LOOP_TIME -> --loop-time.
SETTINGS = [
    ("OCTO_API_KEY", None, "Octopus API key (required unless --demo); environment only, never a flag"),
    ("OCTO_ACCOUNT_NUMBER", None, "account number, to discover meters and tariffs (e.g. A-1234ABCD)"),
    ("OCTO_ELECTRIC_MPAN", None, "import electricity meter point (MPAN)"),
    ("OCTO_ELECTRIC_SN", None, "import electricity meter serial number"),
    ("OCTO_EXPORT_MPAN", None, "export electricity meter point (MPAN)"),
    ("OCTO_EXPORT_SN", None, "export electricity meter serial number"),
    ("OCTO_GAS_MPRN", None, "gas meter point (MPRN)"),
    ("OCTO_GAS_SN", None, "gas meter serial number"),
    ("OCTO_ELECTRIC_COST", None, "fixed import unit rate, pence/kWh inc VAT, where no tariff rate is known"),
    ("OCTO_EXPORT_COST", None, "fixed export unit rate, pence/kWh, where no tariff rate is known"),
    ("OCTO_GAS_COST", None, "fixed gas unit rate, pence/kWh inc VAT, where no tariff rate is known"),
    ("OCTO_GAS_UNIT", "m3", "what the gas meter reports: m3 (SMETS2), kWh (SMETS1) or auto"),
    ("VOLUME_CORRECTION", "1.02264", "gas m3 -> kWh volume correction factor"),
    ("CALORIFIC_VALUE", "39.5", "gas calorific value, MJ/m3 (on your bill)"),
    ("JOULES_CONVERSION", "3.6", "MJ per kWh"),
    ("PAGE_SIZE", "25000", "results per API page (1-25000)"),
    ("LOOP_TIME", None, "seconds between self-timed gathers (signal = \"none\"); unset: gather on stdin/signal"),
    ("OCTO_BACKFILL_FROM", None, "with no saved state, fetch history from this ISO date/datetime (London)"),
    ("OCTO_BACKFILL_DAYS", "30", "with no saved state and no OCTO_BACKFILL_FROM, days of history to fetch"),
    ("OCTO_LOOKBACK_HOURS", "72", "hours re-read before the newest data, for late and corrected intervals"),
    ("OCTO_MAX_POINTS", "5000", "most points printed in one gather; the rest follow on later gathers"),
    ("OCTO_STATE_DIR", None, "where progress is kept (default $STATE_DIRECTORY, $XDG_STATE_HOME/octopus-telegraf "
                             "or ~/.local/state/octopus-telegraf)"),
    ("OCTO_API_URL", "https://api.octopus.energy", "API origin (https, or http on loopback only)"),
    ("OCTO_HTTP_TIMEOUT", "90", "seconds one whole exchange may take: connect, headers and body (at most 600)"),
    ("OCTO_RETRY_PAUSE", "1", "seconds before retrying a failed request (the second retry waits 3x as long)"),
    ("OCTO_TIMESTAMP", "start", "stamp a half-hour at its start or end"),
    ("OCTO_SCHEMA", "octopus", "output schema: octopus or seed (the Node.js tool's measurements)"),
    ("OCTO_PAYMENT_METHOD", "DIRECT_DEBIT", "tariff rows to use: DIRECT_DEBIT or NON_DIRECT_DEBIT"),
    ("OCTO_E7_NIGHT", "00:30-07:30", "Economy 7 night hours, UTC (the API does not say; smart meters: 00:30-07:30)"),
    ("OCTO_GRAPHQL_MAX_PER_HOUR", "60", "most GraphQL calls in any hour, token calls included, shared by every "
                                        "process on OCTO_STATE_DIR (Octopus allows ~100, shared with its app)"),
    ("OCTO_IOG_ALLOWANCE_HOURS", "6", "the car's off-peak allowance per IOG day (12:00-12:00 London) on four-rate "
                                     "Intelligent Octopus products; 0 = no cap"),
    ("OCTO_LIVE_BACKFILL_MINUTES", "60", "live: on a first start, minutes of Home Mini readings to fetch"),
    ("OCTO_LIVE_GROUPING", "TEN_SECONDS", "live: TEN_SECONDS, ONE_MINUTE, FIVE_MINUTES, FIFTEEN_MINUTES, "
                                          "THIRTY_MINUTES or ONE_HOUR"),
    ("OCTO_COMPARE", None, "tariffs to compare your half-hours against: name=spec,... where spec is a family (agile, "
                           "go, intelligent, cosy, flux, tracker, flexible, agile_outgoing, outgoing_fixed, "
                           "flux_export), a product code or a tariff code; e.g. agile=agile,go=go"),
    ("OCTO_COMPARE_DETAIL", "day", "comparison points: day (one per meter, day and comparison) or half-hour"),
    ("OCTO_REGION", None, "region letter A-P for comparisons, when the account cannot tell it"),
    ("OCTO_EVENTS", "false", "true: Octoplus events (Power Down, Power Up), Octopoints and Greener Nights (GraphQL; "
                            "needs OCTO_ACCOUNT_NUMBER)"),
    ("OCTO_BACKEND_API_URL", "https://api.backend.octopus.energy", "the second GraphQL origin, for Greener Nights "
                                                                   "(https, or http on loopback only)"),
    ("OCTO_CARBON", "off", "grid carbon intensity per half-hour (co2_kg): regional, national or off (asks a third "
                           "party, the Carbon Intensity API: opt-in)"),
    ("OCTO_CARBON_API_URL", "https://api.carbonintensity.org.uk", "the Carbon Intensity API origin (https, or http "
                                                                  "on loopback only)"),
    ("OCTO_LOG_LEVEL", "info", "debug, info, warn or error"),
    ("OCTO_DEMO_UNTIL", None, "--demo only: the London date its four weeks end on (default: today); pins the demo"),
]
SECRET_SETTINGS = {"OCTO_API_KEY"}
NOT_FOR_THE_PLUGIN = {"OCTO_LIVE"}  # read by the container's entrypoint, not by octopus-telegraf
LIVE_GROUPINGS = ("TEN_SECONDS", "ONE_MINUTE", "FIVE_MINUTES", "FIFTEEN_MINUTES", "THIRTY_MINUTES", "ONE_HOUR")
DEFAULT_API_URL = "https://api.octopus.energy"


def flag_name(variable: str) -> str:
    name = variable.lower()
    if name.startswith("octo_"):
        name = name[len("octo_"):]
    return "--" + name.replace("_", "-")


def unknown_names(env) -> list[str]:
    """One line for each OCTO_* variable that no setting reads, naming the one probably meant."""
    known = {name for name, _, _ in SETTINGS} | NOT_FOR_THE_PLUGIN
    lines = []
    for name in sorted(n for n in env if n.startswith("OCTO_") and n not in known):
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else " (octopus-telegraf --help lists every setting)"
        lines.append(f"{name} is not a setting octopus-telegraf reads{hint}")
    return lines
