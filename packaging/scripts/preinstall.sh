#!/bin/sh
# steward preinstall. deb: install|upgrade [old-version]; rpm: $1 = 1 install, 2+ upgrade.
# The virtualenv in /opt/steward runs on /usr/bin/python3.11 (the package depends on
# python3.11); say so early when it is missing (e.g. an rpm installed with --nodeps).
set -e
if [ ! -x /usr/bin/python3.11 ]; then
    echo "steward: warning: /usr/bin/python3.11 is missing; steward will not run until" \
        "python3.11 is installed" >&2
fi
exit 0
