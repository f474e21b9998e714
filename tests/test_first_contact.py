"""What a new user meets first: the README's schema is what the demo prints, discover speaks London
dates, and the demo works for discover too."""

import os
import re
from pathlib import Path

from conftest import parse, run_once

README = Path(__file__).resolve().parent.parent / "README.md"


def demo_schema(tmp_path) -> dict:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    lines = []
    for args in (("--demo", "--once"), ("--demo", "live", "--once"), ("--demo", "--once", "--compare-detail",
                                                                         "half-hour")):
        result = run_once(env, args=args)  # the README's demo command as it is: no --max-points
        assert result.returncode == 0 and b"OCTO_MAX_POINTS" not in result.stderr
        lines += result.stdout.decode().splitlines()
    schema = {}
    for point in parse(lines):
        tags, fields = schema.setdefault(point["measurement"], (set(), set()))
        tags.update(point["tags"])
        fields.update(point["fields"])
    return schema


def readme_schema() -> dict:
    section = README.read_text().split("## Output schema", 1)[1].split("\n## ", 1)[0]
    schema = {}
    for row in re.findall(r"^\| `(octopus_[a-z_]+)` \|([^|]*)\|([^|]*)\|", section, re.M):
        measurement, tags, fields = row
        schema[measurement] = (set(re.findall(r"`([a-z_0-9]+)`", tags)), set(re.findall(r"`([a-z_0-9]+)`", fields)))
    return schema


def test_the_readme_schema_is_what_the_demo_prints(tmp_path):
    assert readme_schema() == demo_schema(tmp_path)


def test_discover_works_with_the_demo_and_prints_london_dates(tmp_path):
    result = run_once({"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, args=("discover", "--demo"))
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    # the agreement starts 2025-04-01T00:00:00+01:00: London's 1 April, though 31 March in UTC
    assert "E-1R-AGILE-24-10-01-A from 2025-04-01 to 2025-10-20" in text and "2025-03-31" not in text
    assert "* E-1R-INTELLI-VAR-24-10-29-A from 2025-10-27" in text
    assert "OCTO_ACCOUNT_NUMBER=A-DEMO0001" in text
