"""Plain tools that know nothing of Octopus: logging to stderr (masked, one line each), London time and
exact integer nanoseconds, the line-protocol text, and the deadline of an exchange or a time share.

May import: nothing of octopus_telegraf. Everything else may import it."""
