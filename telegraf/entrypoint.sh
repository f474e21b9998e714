#!/bin/sh
# Telegraf with the octopus-telegraf drop-in; OCTO_LIVE=true adds the Home Mini live block.
# The container gets the whole .env (env_file), so that every OCTO_* setting reaches the plugin; the
# passwords meant for InfluxDB's setup and Grafana are dropped here: neither Telegraf nor the plugin
# needs them. INFLUXDB_TOKEN stays: Telegraf's output writes with it.
set -eu
for name in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p'); do
  case "$name" in
    *PASSWORD*|*SECRET*|GRAFANA_*|GF_*|DOCKER_INFLUXDB_*|INFLUXDB_USERNAME) unset "$name" ;;
  esac
done
directory=/etc/telegraf/telegraf.d
case "${OCTO_LIVE:-false}" in
  true|1|yes) directory=/etc/telegraf/telegraf-live.d ;;
esac
exec telegraf --config /etc/telegraf/telegraf.conf --config-directory "$directory" "$@"
