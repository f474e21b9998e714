#!/bin/sh
# Telegraf with the octopus-telegraf drop-in; OCTO_LIVE=true adds the Home Mini live block.
set -eu
directory=/etc/telegraf/telegraf.d
case "${OCTO_LIVE:-false}" in
  true|1|yes) directory=/etc/telegraf/telegraf-live.d ;;
esac
exec telegraf --config /etc/telegraf/telegraf.conf --config-directory "$directory" "$@"
