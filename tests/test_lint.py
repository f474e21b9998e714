"""The code stays plain: ruff passes on the package and the tests; the layers hold (import-linter)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_passes():
    ruff = shutil.which("ruff")
    if not ruff:
        pytest.skip("ruff is not installed (pip install '.[test]')")
    result = subprocess.run([ruff, "check", "plugin", "tests"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def lint_imports(cwd: Path, source: Path) -> subprocess.CompletedProcess:
    """import-linter with the contracts of pyproject.toml, on the package found in `source`."""
    command = Path(sys.executable).parent / "lint-imports"
    if not command.exists():
        pytest.skip("import-linter is not installed (pip install '.[test]')")
    return subprocess.run([str(command), "--config", str(cwd / "pyproject.toml"), "--no-cache"], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(source)})


def test_the_layers_and_the_extras_independence_hold():
    result = lint_imports(ROOT, ROOT / "plugin")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module,line,broken", [
    ("base/timeutil.py", "from octopus_telegraf.service import collector",
     "octopus_telegraf.base.timeutil -> octopus_telegraf.service.collector"),
    ("core/reading.py", "from octopus_telegraf.extras import events",
     "octopus_telegraf.core.reading -> octopus_telegraf.extras.events"),
    ("extras/events.py", "from octopus_telegraf.extras.flex import FlexDevices",
     "octopus_telegraf.extras.events -> octopus_telegraf.extras.flex"),
])
def test_an_upward_or_sideways_import_fails_naming_it(tmp_path, module, line, broken):
    shutil.copytree(ROOT / "plugin" / "octopus_telegraf", tmp_path / "src" / "octopus_telegraf",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "octopus_telegraf" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports(tmp_path, tmp_path / "src")
    assert result.returncode != 0
    assert broken in " ".join(result.stdout.split()), result.stdout
