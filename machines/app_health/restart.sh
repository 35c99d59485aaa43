#!/bin/sh
# "Restarts" the simulated application: records the restart and marks it up.
# Replace with e.g. `systemctl restart myapp` for a real service.
date -u +%Y-%m-%dT%H:%M:%SZ >> restarts.log
echo up > app.state
echo "restarted"
