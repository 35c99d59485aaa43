#!/bin/sh
# service_guard budget reset (exec watcher `reset_budget`, runs on entering
# `resetting`, i.e. after `steward transition service_guard reset`).
#
# Zeroes the restart counter in the machine data (parse_as_data) so the
# service gets a fresh MAX_RESTARTS budget. Real box (SERVICE set): also
# clears systemd's own failed state and start-rate limit for the unit, which
# would otherwise make the next `systemctl restart` fail at once.
set -u
cd "$(dirname "$0")" || exit 3

SERVICE=${SERVICE:-}
if [ -n "$SERVICE" ]; then
    systemctl reset-failed "$SERVICE" >&2 || true
fi
echo "restart budget reset for ${SERVICE:-the simulated service}" >&2
echo '{"restart_attempts": 0}'
