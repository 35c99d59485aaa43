#!/bin/sh
# disk_guard cleaner (exec watcher `clean`, runs on entering `cleaning`).
#
# Deletes the oldest regular files under SPOOL_DIR (by modification time)
# until usage is down to the target (SPOOL_TARGET_KB / DF_TARGET_PCT), then
# measures again. Exit 0 when usage is now at or under the limit, 1 when it is
# still over it (nothing left that may be deleted: the machine goes to
# `full`), 2 on a configuration error (nothing is deleted).
#
# Never deleted: directories, symlinks, anything whose name starts with a dot
# or that lies under a dot-directory (in-flight uploads, rsync temp files,
# .keep markers), files modified less than MIN_AGE_MIN minutes ago.
# File names containing a newline are skipped.
# stdout: the new measurement plus last_clean_deleted and last_clean_freed_kb,
# merged into the machine data.
set -u
cd "$(dirname "$0")" || exit 3
# shellcheck source-path=SCRIPTDIR source=lib.sh
. ./lib.sh

setup
measure
before=$USAGE

list=$(mktemp) || die "mktemp failed"
trap 'rm -f "$list"' EXIT

# "<mtime> <KiB allocated> <path>" for every candidate, oldest first.
age_test=
[ "$MIN_AGE_MIN" -gt 0 ] && age_test="-mmin +$MIN_AGE_MIN"
# shellcheck disable=SC2086 # $age_test is empty or two words
(cd "$SPOOL_DIR" && find . -mindepth 1 -name '.*' -prune -o \
    -type f $age_test -printf '%T@ %k %p\n') | sort -n >"$list" ||
    die "cannot list $SPOOL_DIR"

deleted=0
freed=0
need=$EXCESS_KB
while [ "$need" -gt 0 ] && IFS=' ' read -r _mtime kb path; do
    file="$SPOOL_DIR/${path#./}"
    [ -f "$file" ] || continue # gone meanwhile, or a name with a newline
    if rm -f -- "$file"; then
        deleted=$((deleted + 1))
        freed=$((freed + kb))
        need=$((need - kb))
        [ "$deleted" -le 50 ] && echo "deleted $file (${kb} KiB)" >&2
    fi
done <"$list"
[ "$deleted" -gt 50 ] && echo "... and $((deleted - 50)) more" >&2

measure
data_json "last_clean_deleted=$deleted" "last_clean_freed_kb=$freed"
summary="$SPOOL_DIR: $before$UNIT -> $USAGE$UNIT (limit $LIMIT$UNIT, target $TARGET$UNIT), deleted $deleted file(s), $freed KiB"
if [ "$USAGE" -gt "$LIMIT" ]; then
    echo "still over the limit: $summary" >&2
    exit 1
fi
echo "cleaned: $summary" >&2
exit 0
