#!/bin/sh
# disk_guard shared settings and measurement; sourced by check.sh and clean.sh
# (running it on its own does nothing).
#
# Settings (from the watcher's `environment` in machine.yaml):
#   MODE             spool (default): limit the total size of SPOOL_DIR, as du sees it
#                    df: limit the use of the filesystem that holds SPOOL_DIR, as df sees it
#   SPOOL_DIR        the directory measured and cleaned (default: spool, beside
#                    the machine; a relative path is created when missing)
#   SPOOL_LIMIT_KB   spool mode: over this many KiB is "over" (default 1024)
#   SPOOL_TARGET_KB  spool mode: cleaning goes down to this (default 80% of the limit)
#   DF_LIMIT_PCT     df mode: filesystem use above this percentage is "over" (default 90)
#   DF_TARGET_PCT    df mode: cleaning goes down to this percentage (default limit - 5)
#   MIN_AGE_MIN      only delete files not modified for this many minutes (default 0)

MODE=${MODE:-spool}
SPOOL_DIR=${SPOOL_DIR:-spool}
SPOOL_LIMIT_KB=${SPOOL_LIMIT_KB:-1024}
DF_LIMIT_PCT=${DF_LIMIT_PCT:-90}
MIN_AGE_MIN=${MIN_AGE_MIN:-0}

die() {
    echo "disk_guard: $*" >&2
    exit 2
}

need_uint() { # name value
    case $2 in
        '' | *[!0-9]*) die "$1 must be a whole number, got '$2'" ;;
    esac
}

# Validate the settings and make sure SPOOL_DIR exists; exits 2 on any error.
setup() {
    need_uint MIN_AGE_MIN "$MIN_AGE_MIN"
    case $MODE in
        spool)
            need_uint SPOOL_LIMIT_KB "$SPOOL_LIMIT_KB"
            SPOOL_TARGET_KB=${SPOOL_TARGET_KB:-$((SPOOL_LIMIT_KB * 80 / 100))}
            need_uint SPOOL_TARGET_KB "$SPOOL_TARGET_KB"
            [ "$SPOOL_TARGET_KB" -le "$SPOOL_LIMIT_KB" ] ||
                die "SPOOL_TARGET_KB ($SPOOL_TARGET_KB) is above SPOOL_LIMIT_KB ($SPOOL_LIMIT_KB)"
            LIMIT=$SPOOL_LIMIT_KB TARGET=$SPOOL_TARGET_KB UNIT=KiB
            ;;
        df)
            need_uint DF_LIMIT_PCT "$DF_LIMIT_PCT"
            DF_TARGET_PCT=${DF_TARGET_PCT:-$((DF_LIMIT_PCT > 5 ? DF_LIMIT_PCT - 5 : 0))}
            need_uint DF_TARGET_PCT "$DF_TARGET_PCT"
            [ "$DF_LIMIT_PCT" -le 100 ] || die "DF_LIMIT_PCT ($DF_LIMIT_PCT) is above 100"
            [ "$DF_TARGET_PCT" -le "$DF_LIMIT_PCT" ] ||
                die "DF_TARGET_PCT ($DF_TARGET_PCT) is above DF_LIMIT_PCT ($DF_LIMIT_PCT)"
            LIMIT=$DF_LIMIT_PCT TARGET=$DF_TARGET_PCT UNIT=%
            ;;
        *) die "MODE must be spool or df, got '$MODE'" ;;
    esac
    case $SPOOL_DIR in
        '' | / | /. | /..) die "refusing SPOOL_DIR='$SPOOL_DIR'" ;;
        /*) [ -d "$SPOOL_DIR" ] || die "SPOOL_DIR $SPOOL_DIR is not a directory" ;;
        *) mkdir -p "$SPOOL_DIR" || die "cannot create SPOOL_DIR $SPOOL_DIR" ;;
    esac
}

# shellcheck disable=SC2034 # EXCESS_KB is used by clean.sh
# Sets USAGE (in UNIT), and EXCESS_KB: how many KiB must go to reach TARGET
# (0 or less when already there).
measure() {
    case $MODE in
        spool)
            USAGE=$(du -sk "$SPOOL_DIR" | cut -f1) || die "du failed on $SPOOL_DIR"
            need_uint "du result" "$USAGE"
            EXCESS_KB=$((USAGE - TARGET))
            ;;
        df)
            # POSIX df -P: one line per filesystem; fields: device, 1024-blocks,
            # used, available, capacity (rounded up, with %), mount point.
            # shellcheck disable=SC2046 # split on purpose: three numbers
            set -- $(df -P -k "$SPOOL_DIR" | awk 'NR == 2 { sub("%", "", $5); print $3, $4, $5 }')
            [ $# -eq 3 ] || die "cannot read df -P output for $SPOOL_DIR"
            need_uint "df used" "$1"
            need_uint "df available" "$2"
            need_uint "df capacity" "$3"
            USAGE=$3
            # capacity = used / (used + available): the root reserve is not counted
            EXCESS_KB=$(($1 - ($1 + $2) * TARGET / 100))
            ;;
    esac
}

# Prints the JSON object merged into the machine data (parse_as_data): the
# measurement, plus any extra integer fields given as key=value arguments.
data_json() {
    python3 - "$MODE" "$SPOOL_DIR" "$USAGE" "$LIMIT" "$TARGET" "$UNIT" "$@" <<'PY'
import json, sys
mode, path, usage, limit, target, unit, *extra = sys.argv[1:]
data = {
    "disk_mode": mode,
    "disk_path": path,
    "disk_usage": int(usage),
    "disk_limit": int(limit),
    "disk_target": int(target),
    "disk_unit": unit,
}
for item in extra:
    key, _, value = item.partition("=")
    data[key] = int(value)
print(json.dumps(data))
PY
}
