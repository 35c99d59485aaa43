#!/bin/sh
# disk_guard usage check (exec watchers `usage` and `full_recheck`).
#
# Exit 0 when usage is at or under the limit, 1 when over it, 2 on a
# configuration error. stdout: the measurement as a JSON object (disk_usage,
# disk_limit, disk_target, disk_unit, ...) merged into the machine data.
# Settings: see lib.sh (MODE, SPOOL_DIR, SPOOL_LIMIT_KB, DF_LIMIT_PCT, ...).
set -u
cd "$(dirname "$0")" || exit 3
# shellcheck source-path=SCRIPTDIR source=lib.sh
. ./lib.sh

setup
measure
# shellcheck disable=SC2119 # no extra fields here
data_json
if [ "$USAGE" -gt "$LIMIT" ]; then
    echo "over: $SPOOL_DIR uses $USAGE$UNIT, limit $LIMIT$UNIT ($MODE mode)" >&2
    exit 1
fi
echo "ok: $SPOOL_DIR uses $USAGE$UNIT, limit $LIMIT$UNIT ($MODE mode)" >&2
exit 0
