"""The settings: the table of every OCTO_* variable (name, default, help) and their parsing into one
Settings object, refused before anything runs with one clear line (Telegraf's Init()).

May import: prices (the product families OCTO_COMPARE names), base."""
