#!/bin/sh
# /usr/bin/steward: the packaged CLI and daemon, from the virtualenv in /opt/steward.
#   -I  isolated: ignore PYTHON* variables and the user site, and do not put the current
#       directory on sys.path (a ./steward directory must not shadow the package)
#   -B  never write .pyc: the package ships them (unchecked-hash) and /opt/steward stays
#       exactly as installed (dpkg -V / rpm -V clean, nothing left behind on removal)
exec /opt/steward/bin/python -I -B -m steward "$@"
