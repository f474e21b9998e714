"""`octopus-telegraf status`: is it working? The service writes `status.json` beside its state when it
starts and after each gather (each meter's newest half-hour, what its last gather met, what each
enrichment waits for); this command reads it with the GraphQL call ledger and prints a table for a
person, or `--json` for scripts. Exit status 1 when data are late, or when no service has gathered for
that state directory; 0 otherwise. The compose healthcheck runs it."""

import json
import os
import sys
import time
from datetime import datetime

from octopus_telegraf.api.budget import usage
from octopus_telegraf.base import log
from octopus_telegraf.base.timeutil import LONDON, NS_PER_SECOND
from octopus_telegraf.core.state import write_atomic
from octopus_telegraf.extras.enrichment import EVERY

STATUS_FILE = "status.json"
LATE_S = 48 * 3600  # Octopus publishes half-hours about a day late; past two days something is wrong
FIRST_GATHER_S = 40 * 60  # a service just started waits for Telegraf's first interval tick (30 min + jitter)
EXIT_OK, EXIT_LATE = 0, 1


_started_ns: int | None = None  # when this process's service started: in every record it writes


def _record(**fields) -> dict:
    return {"version": 1, "pid": os.getpid(), "service": not log.once(), "started": _started_ns, **fields}


def started(directory: str | None) -> None:
    """A service (or --once) has started on this state directory and not gathered yet."""
    global _started_ns
    _started_ns = time.time_ns()
    if directory:
        write_atomic(os.path.join(directory, STATUS_FILE), json.dumps(_record(gathered=None)))


def gathered(collector, failed: int, seconds: float) -> None:
    """What the gather that just ended found, for the next `status` (nothing with --dry-run or the demo)."""
    if not collector.state.path or collector.state.read_only:
        return
    meters = []
    for meter in collector.meters:
        progress = collector.state.meters.get(meter.key)
        meters.append({"fuel": meter.fuel, "direction": meter.direction, "point": meter.point, "serial": meter.serial,
                       "newest_end": progress.newest_end_ns if progress else None,
                       "error": collector.reader.errors.get(meter.key)})
    write_atomic(os.path.join(os.path.dirname(collector.state.path), STATUS_FILE), json.dumps(_record(
        gathered=time.time_ns(), seconds=round(seconds, 2), failed=failed, account_error=collector.account_error,
        more_to_come=collector.budget_reached, meters=meters,
        enrichments=[boundary.status() for boundary in EVERY])))


def command(settings, as_json: bool, out=sys.stdout) -> int:
    """Print the state directory's status; the exit status says whether data are late."""
    now = time.time_ns()
    try:
        with open(os.path.join(settings.state_dir, STATUS_FILE), encoding="utf-8") as handle:
            record = json.load(handle)
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as exc:
        missing = isinstance(exc, FileNotFoundError)
        reason = "no service has run" if missing else f"its status file is unreadable ({exc})"
        record = {"problem": f"{reason} with OCTO_STATE_DIR {settings.state_dir}"}
    calls, pause = usage(settings.state_dir, settings.graphql_per_hour)
    record["graphql"] = {"calls_last_hour": calls, "per_hour": settings.graphql_per_hour,
                         "paused_for_s": round(pause) if pause else None}
    late = judge(record, now)
    record["late"] = late
    if as_json:
        out.write(json.dumps(record, indent=2) + "\n")
    else:
        out.write(table(record, now))
    return EXIT_LATE if late else EXIT_OK


def judge(record: dict, now: int) -> str | None:
    """Why the data are late (or no data come), or None when all is well."""
    if "problem" in record:
        return record["problem"]
    if record.get("service") and not running(record.get("pid")):
        return f"the service that wrote it (pid {record.get('pid')}) is not running: its log says why"
    if not record.get("gathered"):
        waited = (now - (record.get("started") or 0)) / NS_PER_SECOND
        return None if waited < FIRST_GATHER_S else f"started {ago(waited)} and has not gathered yet"
    late = [f"{m['fuel']} {m['direction']} {m['point']}" for m in record.get("meters", [])
            if m.get("newest_end") is None or (now - m["newest_end"]) / NS_PER_SECOND > LATE_S]
    if late:
        return f"no half-hour in the last {LATE_S // 3600} hours: {', '.join(late)}"
    return None


def running(pid) -> bool:
    if type(pid) is not int or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (Telegraf's): it runs
        return True
    return True


def ago(seconds: float) -> str:
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def when(ns: int | None) -> str:
    """A moment on London's clock, as a person in the home reads it."""
    return datetime.fromtimestamp(ns / NS_PER_SECOND, LONDON).strftime("%Y-%m-%d %H:%M %Z") if ns else "never"


def table(record: dict, now: int) -> str:
    lines = []
    if "problem" in record:
        pass  # said once, on the last line
    elif not record.get("gathered"):
        lines.append(f"Started {when(record.get('started'))}; waiting for the first gather (Telegraf's first "
                     "interval tick)")
    else:
        more = "; more to come (OCTO_MAX_POINTS)" if record.get("more_to_come") else ""
        lines.append(f"Last gather: {when(record['gathered'])} ({ago((now - record['gathered']) / NS_PER_SECOND)}), "
                     f"{record.get('seconds', 0):g} s, {record.get('failed', 0)} of {len(record.get('meters', []))} "
                     f"meters failed{more}")
        if record.get("account_error"):
            lines.append(f"Account: {record['account_error']}")
        rows = [("Meter", "Newest half-hour ends", "Lag", "Last gather")]
        for meter in record.get("meters", []):
            end = meter.get("newest_end")
            lag = ago((now - end) / NS_PER_SECOND).removesuffix(" ago") if end else "-"
            rows.append((f"{meter['fuel']} {meter['direction']} {meter['point']}/{meter['serial']}", when(end), lag,
                         meter.get("error") or "ok"))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, [*widths, 0], strict=True)).rstrip()
                  for row in rows]
        if record.get("enrichments"):
            lines.append("Extras:")
        for item in record.get("enrichments", []):
            state = item["state"]
            if state == "waiting":
                next_try = when(item["next_try"]) if item.get("next_try") else "at the next gather"
                state = f"waiting (next try {next_try}): {item.get('error')}"
            lines.append(f"  {item['name']}: {state}")
    graphql = record["graphql"]
    pause = f"; paused {graphql['paused_for_s'] // 60 + 1} min more (the API asked)" if graphql["paused_for_s"] else ""
    lines.append(f"GraphQL: {graphql['calls_last_hour']} of {graphql['per_hour']} calls in the last hour{pause}")
    lines.append(f"Data: LATE: {record['late']}" if record["late"] else "Data: on time")
    return "\n".join(lines) + "\n"
