#!/usr/bin/env python3
"""Reference next-fire times from croniter, for the CronSchedule cross-check test.

Checked with croniter 7.0.0.

Reads JSON lines {"expr": "...", "tz": "Europe/Berlin", "start": "2024-03-30T23:10:00Z"}
on stdin and writes one JSON line per input: {"next": [five ISO-8601 UTC times]} or
{"error": "..."} when croniter refuses the expression or finds no next time.

Exit status 3 (with a message on stderr) when croniter is not installed.

Two deliberate choices, both documented in CronSchedule's doc comment:
- croniter runs with implement_cron_bug=True, its switch for Vixie cron's day rule (a day
  field starting with "*", such as "*/2", counts as unrestricted, so it is AND-ed with the
  other day field rather than OR-ed);
- in a repeated hour (clocks fall back) croniter fires a wall time at both of its
  occurrences; Ferry fires it once, at the first. So a croniter time that is the *second*
  occurrence of an ambiguous wall time is dropped here.
"""
import json
import sys
from datetime import datetime, timezone

try:
    from croniter import croniter
    from zoneinfo import ZoneInfo
except ImportError as error:
    print(f"cron_reference.py: {error}; run scripts/setup.sh to install croniter", file=sys.stderr)
    sys.exit(3)

COUNT = 5


def is_second_occurrence(utc_time, zone):
    local = utc_time.astimezone(zone)
    if local.fold != 1:
        return False
    # fold=1 only means something when the wall time is ambiguous.
    return local.replace(fold=0).utcoffset() != local.utcoffset()


def next_times(expr, tz, start):
    zone = ZoneInfo(tz)
    begin = datetime.fromisoformat(start.replace("Z", "+00:00")).astimezone(zone)
    iterator = croniter(expr, begin, implement_cron_bug=True)
    times = []
    while len(times) < COUNT:
        fire = iterator.get_next(datetime).astimezone(timezone.utc)
        if is_second_occurrence(fire, zone):
            continue
        times.append(fire.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return times


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        request = json.loads(line)
        try:
            result = {"next": next_times(request["expr"], request["tz"], request["start"])}
        except Exception as error:  # croniter's own errors are reported, not fatal
            result = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
