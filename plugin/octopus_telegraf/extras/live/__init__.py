"""The Home Mini (`octopus-telegraf live`): the account's devices and their near-real-time telemetry.

May import: the extras' boundary, core, config, prices, api, base; no other extra."""
