#!/bin/sh
# steward postremove.
#   deb: remove | purge | upgrade <new-version> | failed-upgrade | abort-install | ...
#   rpm: $1 = 0 on erase, 1+ on upgrade (this is the old package's script)
# remove: forget the unit. purge (deb) and erase (rpm, which has no purge): also delete
# the state (/var/lib/steward: machine states, the event outbox) and the unit's
# enablement. Machines you put in /etc/steward/machines are yours and stay, and so does
# an edited config on rpm (as steward.yaml.rpmsave). rpm upgrade: restart the daemon if
# it was running, now that the new files are in place.
set -e
unit=steward.service
running=no
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    running=yes
fi

reload() {
    if [ "$running" = yes ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
}

purge() {
    # the unit file is gone, so `systemctl disable` cannot find it: drop its symlinks
    for link in /etc/systemd/system/*.wants/"$unit"; do
        if [ -L "$link" ]; then rm -f "$link"; fi
    done
    rm -rf /var/lib/steward
    # empty only: machines an operator dropped in stay (dpkg and rpm warn about them)
    rmdir /etc/steward/machines 2>/dev/null || true
    rmdir /etc/steward 2>/dev/null || true
}

case "$1" in
    remove) reload ;;
    purge) purge; reload ;;
    0) purge; reload ;;
    [0-9]*)
        if [ "$running" = yes ]; then
            systemctl daemon-reload >/dev/null 2>&1 || true
            systemctl try-restart "$unit" >/dev/null 2>&1 || true
        fi
        ;;
esac
exit 0
