"""The REST core, the product: the account's meters and agreements, reading each meter's half-hours
(look-back, late and corrected data, OCTO_MAX_POINTS), their points, standing charges and daily bills,
and the state that remembers what was printed.

May import: config, prices, api, base. Never an extra: an extra is called by the service, and changes
what the core prints only through the price book and the state."""
