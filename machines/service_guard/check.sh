#!/bin/sh
# service_guard health check (exec watcher `check`).
#
# Exit 0 = healthy, anything else = unhealthy. stdout is a JSON object merged
# into the machine data (parse_as_data): a healthy service resets the restart
# counter to 0; an unhealthy one prints {} so the counter is left alone.
#
# Real box: set SERVICE to a systemd unit (environment: - SERVICE=nginx.service)
# and the check becomes `systemctl is-active --quiet "$SERVICE"`. Replace that
# line with any probe you trust more (curl -fsS http://127.0.0.1/health,
# pg_isready, redis-cli ping, ...): it only has to exit 0 when all is well.
#
# Simulation (SERVICE unset): the file service.state beside this script holds
# "up" or "down"; it is created as "up" when missing.
set -u
cd "$(dirname "$0")" || exit 3

SERVICE=${SERVICE:-}
STATE_FILE=${STATE_FILE:-service.state}

if [ -n "$SERVICE" ]; then
    if systemctl is-active --quiet "$SERVICE"; then
        healthy=yes
        what="$SERVICE is active"
    else
        healthy=no
        what="$SERVICE is $(systemctl is-active "$SERVICE" 2>/dev/null || true)"
    fi
else
    [ -e "$STATE_FILE" ] || echo up >"$STATE_FILE"
    state=$(tr -d '[:space:]' <"$STATE_FILE")
    if [ "$state" = up ]; then
        healthy=yes
    else
        healthy=no
    fi
    what="simulated service is '${state}' ($STATE_FILE)"
fi

if [ "$healthy" = yes ]; then
    echo "healthy: $what" >&2
    echo '{"restart_attempts": 0}'
    exit 0
fi
echo "unhealthy: $what" >&2
echo '{}'
exit 1
