"""Octopus Energy smart-meter data for Telegraf's inputs.execd, as InfluxDB line protocol."""

__version__ = "0.1.0"
