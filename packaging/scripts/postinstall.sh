#!/bin/sh
# steward postinstall.
#   deb: configure [last-configured-version] | abort-upgrade | abort-remove | ...
#   rpm: $1 = 1 on install, 2+ on upgrade
# Install: enable steward.service; start it only when systemd runs this machine (in a
# container or chroot it is enabled but not started). Upgrade: restart it if it was
# running (deb here; rpm in the old package's postremove, once the old files are gone).
set -e
unit=steward.service

case "$1" in
    configure) if [ -z "$2" ]; then action=install; else action=upgrade-deb; fi ;;
    1) action=install ;;
    [0-9]*) action=upgrade-rpm ;;
    *) exit 0 ;;
esac

command -v systemctl >/dev/null 2>&1 || exit 0
running=no
if [ -d /run/systemd/system ]; then
    running=yes
    systemctl daemon-reload >/dev/null 2>&1 || true
fi

case "$action" in
    install)
        # works without a running systemd: it only creates the wants/ symlink
        systemctl enable "$unit" >/dev/null 2>&1 ||
            echo "steward: could not enable $unit" >&2
        if [ "$running" = yes ]; then
            systemctl start "$unit" || echo "steward: could not start $unit" \
                "(see: journalctl -u steward)" >&2
        else
            echo "steward: $unit enabled; systemd is not running here, so not started" >&2
        fi
        ;;
    upgrade-deb)
        if [ "$running" = yes ]; then
            systemctl try-restart "$unit" || echo "steward: could not restart $unit" >&2
        fi
        ;;
esac
exit 0
