"""The built-in demo account, served to the real client through a requests adapter: four weeks of
half-hours, tariffs, products, GraphQL, all deterministic and without network.

May import: config, base (it only answers requests; nothing it answers is special-cased above it)."""
