#!/bin/sh
# service_guard restart (exec watcher `restart`, runs on entering `unhealthy`).
#
# Reads restart_attempts from the machine data (the JSON file named by
# WATCHER_DATA). If MAX_RESTARTS attempts were already made, it does nothing
# and exits 1: the machine escalates to `failed`. Otherwise it restarts the
# service, prints {"restart_attempts": N+1} (merged into the machine data,
# parse_as_data) and exits 0, whether or not the restart command itself
# succeeded: the health check after the grace period is the judge, and a
# restart that failed still counts against the budget.
#
# Real box: set SERVICE to a systemd unit (environment: - SERVICE=nginx.service)
# and the restart becomes `systemctl restart "$SERVICE"` (steward must then run
# as root, or with a polkit/sudo rule allowing exactly that). Any other restart
# command (service nginx restart, docker restart web, supervisorctl restart x)
# fits in do_restart below.
#
# Simulation (SERVICE unset): writes "up" to service.state, unless the file
# service.broken exists, in which case the restart fails.
set -u
cd "$(dirname "$0")" || exit 3

SERVICE=${SERVICE:-}
STATE_FILE=${STATE_FILE:-service.state}
BROKEN_FILE=${BROKEN_FILE:-service.broken}
MAX_RESTARTS=${MAX_RESTARTS:-3}

case $MAX_RESTARTS in
    '' | *[!0-9]*)
        echo "MAX_RESTARTS must be a whole number, got '$MAX_RESTARTS'" >&2
        exit 2
        ;;
esac

# restart_attempts from the machine data; 0 when absent or unreadable.
read_attempts() {
    if [ -z "${WATCHER_DATA:-}" ] || [ ! -r "$WATCHER_DATA" ]; then
        echo 0
        return
    fi
    python3 - "$WATCHER_DATA" <<'PY'
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)
    n = int(data.get("restart_attempts", 0)) if isinstance(data, dict) else 0
except Exception:
    n = 0
print(max(n, 0))
PY
}

do_restart() {
    if [ -n "$SERVICE" ]; then
        systemctl restart "$SERVICE" >&2
    elif [ -e "$BROKEN_FILE" ]; then
        echo "simulated restart fails: $BROKEN_FILE exists" >&2
        return 1
    else
        echo up >"$STATE_FILE"
    fi
}

attempts=$(read_attempts)
if [ "$attempts" -ge "$MAX_RESTARTS" ]; then
    echo "giving up: $attempts restart(s) did not bring ${SERVICE:-the simulated service} back (MAX_RESTARTS=$MAX_RESTARTS)" >&2
    printf '{"restart_attempts": %d}\n' "$attempts"
    exit 1
fi

attempt=$((attempts + 1))
if do_restart; then
    echo "restart $attempt/$MAX_RESTARTS of ${SERVICE:-the simulated service}: command succeeded" >&2
else
    echo "restart $attempt/$MAX_RESTARTS of ${SERVICE:-the simulated service}: command FAILED" >&2
fi
printf '{"restart_attempts": %d}\n' "$attempt"
exit 0
