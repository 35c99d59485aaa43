#!/bin/sh
# maintenance reason (exec watcher `reason`, every 30s in every state).
#
# Prints {"maintenance_reason": <first line of the flag>, "maintenance_since":
# <the flag's modification time, UTC ISO 8601>} for the machine data, both ""
# when there is no flag. Create the flag with a reason to make it visible in
# `steward status` and the events:  echo "kernel upgrade (alice)" > maintenance.flag
set -u
cd "$(dirname "$0")" || exit 3

FLAG=${FLAG:-maintenance.flag}

exec python3 - "$FLAG" <<'PY'
import datetime, json, os, sys

flag = sys.argv[1]
reason = since = ""
try:
    with open(flag, encoding="utf-8", errors="replace") as f:
        reason = f.readline(500).strip()
    mtime = os.stat(flag).st_mtime
    since = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
except FileNotFoundError:
    reason = since = ""
except OSError as e:
    reason = f"(cannot read {flag}: {e.strerror})"
print(json.dumps({"maintenance_reason": reason, "maintenance_since": since}))
PY
