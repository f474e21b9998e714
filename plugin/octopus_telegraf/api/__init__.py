"""Talking to Octopus: the REST client (one deadline per exchange, retries, Retry-After, pages and `next`
links), the streaming page reader, the GraphQL client with its token, the shared hourly call budget,
and the checks of an answer's shape.

May import: base. Knows nothing of meters, prices or what the answers mean."""
