"""What pricing takes from the settings, and nothing more: the options struct of Telegraf's plugins, so that
a reader of the price book sees its inputs in its constructor (the settings object stays above)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class PriceOptions:
    """What pricing takes from the settings, and nothing more (the options struct of Telegraf's plugins)."""

    payment_method: str = "DIRECT_DEBIT"  # OCTO_PAYMENT_METHOD: the rate rows used
    e7_night: tuple[int, int] = (1800, 27000)  # OCTO_E7_NIGHT, seconds of the UTC day
    iog_allowance_hours: float = 6.0  # OCTO_IOG_ALLOWANCE_HOURS
