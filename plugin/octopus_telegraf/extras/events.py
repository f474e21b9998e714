"""Octoplus events, Octopoints and Greener Nights (OCTO_EVENTS=true): read-only GraphQL, each part behind
the enrichment boundary and on the shared call budget, each asked at most as often as it can change.

- events: Power Down (`octoplus-saving-sessions`) and Power Up (`free_electricity`) sessions of the
  import MPAN, at most every 30 minutes -> octopus_event, printed once and again when it changes;
- Octopoints: the ledger's balance, at most hourly and only while the account is enrolled (asked at
  most every 6 hours) -> octopus_octopoints, printed on change and at least once a London day;
- Greener Nights: the forecast on OCTO_BACKEND_API_URL, at most every 3 hours -> octopus_greener_night
  at 23:00 London, with `ever_flagged` kept in the state: a night once flagged stays flagged.

What was asked when, and what was printed, is kept in the state (`events`), so a restart neither asks
early nor prints again. Octopus changed these answers twice in 2026: every field is read defensively,
and an answer of another shape is one line per episode (the boundary's), never a failed gather.

(A little over 220 lines: three small parts that share one state section and one pending list.)"""

import time
from datetime import date, datetime
from datetime import time as clock

from octopus_telegraf.api.faults import origin
from octopus_telegraf.api.shapes import Ceiling, ShapeError, listed
from octopus_telegraf.base import log
from octopus_telegraf.base.clock import due
from octopus_telegraf.base.clock import stamp as now_stamp
from octopus_telegraf.base.lineprotocol import escape_key, line, tag_prefix
from octopus_telegraf.base.timeutil import (
    LARGEST_NS,
    LONDON,
    NS_PER_SECOND,
    datetime_to_ns,
    iso_to_ns,
    london_day_start,
)
from octopus_telegraf.extras.enrichment import Enrichment

SLUGS = {"octoplus-saving-sessions": "power_down", "free_electricity": "power_up"}
EVENTS_EVERY, POINTS_EVERY, ENROLMENT_EVERY, NIGHTS_EVERY = 1800, 3600, 6 * 3600, 3 * 3600  # seconds
LONGEST_EVENT_S = 24 * 3600
EVENTS_QUERY = ("query Events($account: String!, $mpan: String!, $slug: String!) { "
                "customerFlexibilityCampaignEvents(accountNumber: $account, supplyPointIdentifier: $mpan, "
                "campaignSlug: $slug, last: 50) { edges { node { code startAt endAt } } } }")
ENROLMENT_QUERY = ("query Enrolled($account: String!) { octoplusAccountInfo(accountNumber: $account) "
                   "{ isOctoplusEnrolled } }")
POINTS_QUERY = "query Points { loyaltyPointLedgers { balanceCarriedForward } }"
NIGHTS_QUERY = "query Nights { greenerNightsForecast { date isGreenerNight greennessScore greennessIndex } }"
KEEP_EVENTS, KEEP_NIGHTS = 4 * 50, 60  # twice what the API lists: enough never to print one again
LISTED_EVENTS, LISTED_NIGHTS = 50, 14  # what one answer may list (`last: 50`; a forecast of a few nights)


class Events:
    def __init__(self, kraken, settings, store: dict):
        self.kraken = kraken
        self.account = settings.account_number
        self.backend = settings.backend_url
        kraken.client.token_origins.add(origin(settings.backend_url))  # the token, never the key, goes there
        self.store = store  # lives in the state
        for key in ("asked", "events", "nights"):
            if not isinstance(store.get(key), dict):
                if key in store:
                    log.warn(f"state: the Octoplus `{key}` section is damaged; dropped")
                store[key] = {}
        self.ceiling = Ceiling("Octoplus")
        self.parts = {name: Enrichment(title) for name, title in (
            ("events", "Octoplus events"), ("points", "Octopoints"), ("nights", "Greener Nights"))}
        self.pending: list[tuple[str, str, list]] = []  # (kind of record, key, values) to keep once printed

    def _due(self, part: str, every: float) -> bool:
        return due(self.store["asked"].get(part), every)

    def _asked(self, part: str) -> None:
        """Kept with the points it gave (kept()): a gather whose points wait for room asks again after a restart."""
        self.pending.append(("asked", part, now_stamp()))

    def lines(self, meters) -> list[str]:
        """The points new or changed since printed, asking what is due. `kept()` once they are written."""
        import_point = next((m.point for m in meters if m.fuel == "electricity" and m.direction == "import"), None)
        self.pending = []
        out = []
        if import_point and self._due("events", EVENTS_EVERY):
            out += self.parts["events"].run(self._events, import_point) or []
        if self._due("points", POINTS_EVERY):  # printed on change, and at least once a London day
            out += self.parts["points"].run(self._points) or []
        if self._due("nights", NIGHTS_EVERY):
            out += self.parts["nights"].run(self._nights) or []
        return out

    def kept(self) -> None:
        """The lines were written: remember what they said."""
        for kind, key, values in self.pending:
            if kind == "points":
                self.store["points"] = values
            elif kind == "asked":
                self.store["asked"][key] = values
            else:
                self.store[kind][key] = values
        self.pending = []
        self._forget_old()

    # -- Power Down and Power Up sessions -------------------------------------------------------------
    def _events(self, mpan: str) -> list[str]:
        """Both campaigns' sessions, or nothing: a failure on the second leaves the first to be asked again."""
        out, pending = [], []
        for slug, kind in SLUGS.items():
            data = self.kraken.query(EVENTS_QUERY, {"account": self.account, "mpan": mpan, "slug": slug})
            sessions = {}  # a session listed twice is the last of its listings: one answer, one value
            for node in listed(data, "customerFlexibilityCampaignEvents", "edges", "node"):
                event = _event(node)
                if event is not None:
                    code, start_ns, values = event
                    sessions[f"{kind}|{code}|{start_ns}"] = (code, start_ns, values)
            newest = sorted(sessions.items(), key=lambda item: item[1][1])[-LISTED_EVENTS:]
            if len(sessions) > LISTED_EVENTS:
                self.ceiling.cut(f"{len(sessions)} {kind} sessions listed where {LISTED_EVENTS} were asked for; "
                              f"the newest {LISTED_EVENTS} are kept")
            for key, (code, start_ns, values) in newest:
                if self.store["events"].get(key) != values:
                    fields = {name: value for name, value in zip(("duration_s", "joined", "points_per_kwh"), values,
                                                                 strict=True) if value is not None}
                    out.append(line(tag_prefix("octopus_event", {"kind": kind, "code": code}), fields, start_ns))
                    pending.append(("events", key, values))
        self.pending += pending
        self._asked("events")
        return out

    # -- Octopoints ---------------------------------------------------------------------------------------
    def _points(self) -> list[str]:
        if self.store.get("enrolled") is None or self._due("enrolment", ENROLMENT_EVERY):
            data = self.kraken.query(ENROLMENT_QUERY, {"account": self.account})
            info = data.get("octoplusAccountInfo")
            if info is not None and not isinstance(info, dict):
                raise ShapeError("octoplusAccountInfo is not an object")
            enrolled = (info or {}).get("isOctoplusEnrolled") is True
            if enrolled != self.store.get("enrolled"):
                log.info(f"Octoplus: account {self.account} is {'' if enrolled else 'not '}enrolled"
                         + ("" if enrolled else "; no Octopoints asked"))
            self.store["enrolled"] = enrolled
            self._asked("enrolment")
        if not self.store["enrolled"]:
            self._asked("points")
            return []
        data = self.kraken.query(POINTS_QUERY, {})
        ledgers = listed(data, "loyaltyPointLedgers")
        self._asked("points")
        if not ledgers:
            return []
        balance = _whole(ledgers[0].get("balanceCarriedForward"))
        if balance is None:
            raise ShapeError("balanceCarriedForward is not a whole number")
        today = london_day_start(time.time_ns())
        if self.store.get("points") == [balance, today]:
            return []
        self.pending.append(("points", "", [balance, today]))
        now_ns = time.time_ns() // NS_PER_SECOND * NS_PER_SECOND
        return [line(tag_prefix("octopus_octopoints", {"account": self.account}), {"balance": balance}, now_ns)]

    # -- Greener Nights ---------------------------------------------------------------------------------
    def _nights(self) -> list[str]:
        data = self.kraken.query(NIGHTS_QUERY, {}, backend=self.backend)
        out = []
        nights, flagged_in_answer = {}, set()  # a night listed twice: its last listing, flagged if any was
        for night in listed(data, "greenerNightsForecast"):
            parsed = _night(night)
            if parsed is not None:
                nights[parsed[0]] = parsed
                if parsed[3]:
                    flagged_in_answer.add(parsed[0])
        if len(nights) > LISTED_NIGHTS:
            self.ceiling.cut(f"{len(nights)} Greener Nights listed; the first {LISTED_NIGHTS} are kept")
        for day in sorted(nights)[:LISTED_NIGHTS]:
            _, score, index, flagged = nights[day]
            old = self.store["nights"].get(day)
            ever = day in flagged_in_answer or bool(isinstance(old, list) and len(old) == 4 and old[3] is True)
            values = [score, index, flagged, ever]
            if old != values:
                stamp = datetime_to_ns(datetime.combine(date.fromisoformat(day), clock(23, 0), tzinfo=LONDON))
                fields = {"score": score, "index": index, "greener_night": flagged, "ever_flagged": ever}
                out.append(line("octopus_greener_night", fields, stamp))
                self.pending.append(("nights", day, values))
        self._asked("nights")
        return out

    def _forget_old(self) -> None:
        """Keep what the API may list again (its last 50 sessions a campaign, a few nights ahead), no more."""
        def start(key: str) -> int:
            tail = key.rsplit("|", 1)[-1]
            return int(tail) if tail.isdigit() else -1

        for key in sorted(self.store["events"], key=start)[:-KEEP_EVENTS]:
            del self.store["events"][key]
        for day in sorted(self.store["nights"])[:-KEEP_NIGHTS]:
            del self.store["nights"][day]


def _event(node: dict):
    """(code, start ns, [duration s, joined or None, points per kWh or None]), or None for an entry that
    cannot be one (no code, times that do not parse, an end before the start, longer than a day)."""
    code = node.get("code")
    try:
        start, end = iso_to_ns(node["startAt"]), iso_to_ns(node["endAt"])
        escape_key(code)
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError):
        return None
    duration = (end - start) // NS_PER_SECOND
    if not 0 <= duration <= LONGEST_EVENT_S or not 0 <= start < LARGEST_NS:
        return None
    joined = node.get("joined") if isinstance(node.get("joined"), bool) else None
    return code, start, [duration, joined, _whole(node.get("pointsPerKwh"))]


def _night(night: dict):
    """(ISO date, score, index, flagged) of a forecast entry, or None."""
    day, score, index = night.get("date"), _whole(night.get("greennessScore")), night.get("greennessIndex")
    try:
        day = date.fromisoformat(day).isoformat()
    except (TypeError, ValueError):
        return None
    if score is None or not isinstance(index, str) or not index.isprintable() or len(index) > 40:
        return None
    return day, score, index, night.get("isGreenerNight") is True  # the line escapes quotes and backslashes


def _whole(value) -> int | None:
    """An integer from a number or a numeric string (GraphQL sends some as text); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 2**62 else None
    if isinstance(value, (float, str)):
        try:
            number = float(value)
        except ValueError:
            return None
        if number == number and abs(number) < 2**53 and number == int(number):
            return int(number)
    return None

