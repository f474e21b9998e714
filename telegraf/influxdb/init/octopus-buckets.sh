#!/bin/bash
# Run once by the influxdb:2 image, right after its first setup (DOCKER_INFLUXDB_INIT_MODE=setup), with the
# influx CLI already holding the operator token. It makes:
#   - the demo's own bucket (INFLUXDB_DEMO_BUCKET), so that the README's demo never mixes with your data;
#   - a read-only v1 user for Grafana (GRAFANA_INFLUXDB_USER / GRAFANA_INFLUXDB_PASSWORD) that can read
#     both buckets and write nothing: Grafana never holds the all-access operator token.
# On a stack set up before this script existed, run it by hand:
#   docker compose exec influxdb bash /docker-entrypoint-initdb.d/octopus-buckets.sh
set -euo pipefail
org="${DOCKER_INFLUXDB_INIT_ORG:-${INFLUXDB_ORG:-home}}"
main="${DOCKER_INFLUXDB_INIT_BUCKET:-${INFLUXDB_BUCKET:-octopus}}"
demo="${INFLUXDB_DEMO_BUCKET:-octopus-demo}"
bucket_id() { influx bucket list --org "$org" --name "$1" --hide-headers | cut -f 1; }

[ -n "$(bucket_id "$demo" 2>/dev/null || true)" ] || influx bucket create --org "$org" --name "$demo"
main_id="$(bucket_id "$main")"
demo_id="$(bucket_id "$demo")"
# InfluxQL (Grafana's queries) finds a bucket through a database/retention-policy mapping of its name
for pair in "$main:$main_id" "$demo:$demo_id"; do
  influx v1 dbrp create --org "$org" --db "${pair%%:*}" --rp autogen --bucket-id "${pair#*:}" --default \
    >/dev/null 2>&1 || true  # already mapped
done
influx v1 auth create --org "$org" --username "${GRAFANA_INFLUXDB_USER:-grafana}" \
  --password "${GRAFANA_INFLUXDB_PASSWORD:?set GRAFANA_INFLUXDB_PASSWORD in .env}" \
  --read-bucket "$main_id" --read-bucket "$demo_id" --description "Grafana: read only" >/dev/null
echo "octopus-buckets: bucket $demo and the read-only user ${GRAFANA_INFLUXDB_USER:-grafana} are ready"
