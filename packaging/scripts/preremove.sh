#!/bin/sh
# steward preremove.
#   deb: remove | upgrade <new-version> | deconfigure | failed-upgrade
#   rpm: $1 = 0 on erase, 1+ on upgrade (this is the old package's script)
# On final removal: stop the daemon (if systemd runs it) and, for rpm, disable the unit.
# On upgrade nothing: the daemon keeps running and is restarted once the new files are in.
set -e
unit=steward.service

case "$1" in
    remove|deconfigure) fmt=deb ;;
    0) fmt=rpm ;;
    *) exit 0 ;;
esac

command -v systemctl >/dev/null 2>&1 || exit 0
if [ -d /run/systemd/system ]; then
    systemctl stop "$unit" >/dev/null 2>&1 || true
fi
# deb keeps the enablement until purge (a removed-but-not-purged package keeps its
# configuration); rpm has no purge, so erase disables now, while the unit file exists
if [ "$fmt" = rpm ]; then
    systemctl --no-reload disable "$unit" >/dev/null 2>&1 || true
fi
exit 0
