#!/bin/sh
# maintenance expiry (exec watcher `clear_flag`, runs on entering `expired`).
#
# Moves the flag file aside to <flag>.expired (replacing an older one), so the
# expired window is still visible but cannot put the node back into
# maintenance. Exit 0 when the flag is gone, 1 when it could not be moved.
set -u
cd "$(dirname "$0")" || exit 3

FLAG=${FLAG:-maintenance.flag}

if [ ! -e "$FLAG" ]; then
    echo "maintenance expired; $FLAG is already gone" >&2
    exit 0
fi
if mv -f -- "$FLAG" "$FLAG.expired"; then
    echo "maintenance expired; moved $FLAG to $FLAG.expired" >&2
    exit 0
fi
echo "maintenance expired but $FLAG could not be moved; remove it by hand" >&2
exit 1
