"""Octopus's Kraken GraphQL API: one token per process, errors by code, answers checked for shape.

Octopus allows about 100 GraphQL calls an hour per account, shared with its own app. Every call,
token calls included, is drawn from OCTO_GRAPHQL_MAX_PER_HOUR in any rolling hour (budget.py); a
rate-limit answer (an error code, or HTTP 429) pauses GraphQL work for everyone; nothing is retried
in a loop.
"""

import re
import time

from octopus_telegraf.api.budget import Budget, BudgetSpent
from octopus_telegraf.api.faults import ApiError
from octopus_telegraf.base import log

TOKEN_SECONDS = 55 * 60  # a Kraken token lasts 60 minutes: renewed a little before
RATE_LIMITED = {"KT-CT-1199", "OE-0002"}
TOKEN_EXPIRED = {"KT-CT-1124"}
AUTH_FAILED = {"KT-CT-1111", "KT-CT-1134", "KT-CT-1135", "KT-CT-1139", "KT-CT-1143"}
DEVICE_NOT_FOUND = "KT-CT-4301"
NO_TELEMETRY = "KT-GB-4039"
TOKEN_TEXT = re.compile(r"[A-Za-z0-9._~+/=-]{1,8192}")  # a JWT: base64url parts and dots
TOKEN_MUTATION = ("mutation Token($key: String!) { obtainKrakenToken(input: {APIKey: $key}) "
                  "{ token refreshToken refreshExpiresIn } }")


class GraphQLError(ApiError):
    """The API answered with `errors`; `code` is the first errorCode (KT-CT-...), if any."""

    def __init__(self, message: str, code: str | None = None, *, needs_user: bool = False):
        super().__init__(message, needs_user=needs_user)
        self.code = code


class Kraken:
    """Queries with a token, renewed once on an expired or refused token; every call budgeted."""

    def __init__(self, client, api_key: str | None, budget: Budget):
        self.client = client
        self.api_key = api_key
        self.budget = budget
        self.url = client.url("/v1/graphql/")
        self.calls = 0  # made by this process, token calls included
        self._token: tuple[str, float] | None = None

    def query(self, query: str, variables: dict, backend: str | None = None) -> dict:
        """The `data` of a query, on OCTO_API_URL, or on the `backend` origin (OCTO_BACKEND_API_URL), which
        takes the bare token, without `JWT `. Raises GraphQLError, BudgetSpent or ApiError."""
        url = f"{backend}/v1/graphql/" if backend else self.url
        try:
            return self._call(query, variables, self._token_now(), url, bare=bool(backend))
        except GraphQLError as exc:
            if exc.code not in TOKEN_EXPIRED | AUTH_FAILED:
                raise
            log.debug(f"GraphQL: token refused ({exc.code}); obtaining a new one")
            self._token = None  # once: a new token, the call repeated once
            return self._call(query, variables, self._token_now(), url, bare=bool(backend))

    def _token_now(self) -> str:
        if self._token and time.monotonic() < self._token[1]:
            return self._token[0]
        data = self._call(TOKEN_MUTATION, {"key": self.api_key}, None)  # the key: OCTO_API_URL only
        answer = data.get("obtainKrakenToken")
        token = answer.get("token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not TOKEN_TEXT.fullmatch(token):
            # kept for nothing: a token that cannot travel in a header would fail every call for an hour
            raise GraphQLError("GraphQL gave no usable token (not a JWT's characters)")
        log.add_secret(token)
        self._token = (token, time.monotonic() + TOKEN_SECONDS)
        return token

    def _call(self, query: str, variables: dict, token: str | None, url: str | None = None, bare=False) -> dict:
        self.budget.take()
        self.calls += 1
        headers = {"Authorization": token if bare else f"JWT {token}"} if token else None
        try:
            body = self.client.get_json(url or self.url, authenticated=False, headers=headers, retries=0,
                                        payload={"query": query, "variables": variables})  # never retried in a loop
        except ApiError as exc:
            if exc.status == 429:  # as much a request to slow down as KT-CT-1199
                self.budget.rate_limited(exc.retry_after)
                raise BudgetSpent("GraphQL rate limited (HTTP 429)") from None
            raise
        if not isinstance(body, dict):
            raise GraphQLError("GraphQL answered something that is not an object")
        data = body.get("data") if isinstance(body.get("data"), dict) else None
        errors = body.get("errors")
        if errors:
            code, message = _first_error(errors)
            if code in RATE_LIMITED or "too many requests" in message.lower():
                self.budget.rate_limited()
                raise BudgetSpent(f"GraphQL rate limited ({code or message})")
            if code in TOKEN_EXPIRED:
                raise GraphQLError(f"GraphQL {code}: token expired", code)
            if code in AUTH_FAILED:
                raise GraphQLError(f"GraphQL {code}: authentication failed ({message}); check OCTO_API_KEY", code,
                                   needs_user=True)
            if data is None or not any(value is not None for value in data.values()):
                raise GraphQLError(f"GraphQL {code or 'error'}: {message}", code)
            log.debug(f"GraphQL: a partial answer ({code or 'error'}: {message}); using the data it has")
        if data is None:
            raise GraphQLError("GraphQL response has no data")
        return data


def _first_error(errors) -> tuple[str | None, str]:
    """(errorCode, message) of the first error, whatever shape the list and its entries have."""
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    extensions = first.get("extensions")
    code = extensions.get("errorCode") if isinstance(extensions, dict) else None
    message = first.get("message")
    return (code if isinstance(code, str) and code.isprintable() else None,
            log.clip(message if isinstance(message, str) else "", 120))
