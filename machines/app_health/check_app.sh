#!/bin/sh
# A Nagios plugin for the simulated application: app.state holds "up" or
# "down", app.load a number 0-100 (both created when missing).
# Usage: check_app.sh --warn N --crit N    (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)
warn=80 crit=95
while [ $# -gt 0 ]; do
    case $1 in
        --warn) warn=$2; shift 2 ;;
        --crit) crit=$2; shift 2 ;;
        *) echo "APP UNKNOWN - unknown argument $1"; exit 3 ;;
    esac
done
[ -f app.state ] || echo up > app.state
[ -f app.load ] || echo 20 > app.load
state=$(cat app.state)
load=$(cat app.load)
perf="load=${load}%;${warn};${crit};0;100"
if [ "$state" != up ]; then
    echo "APP CRITICAL - application is $state | $perf"
    exit 2
fi
if [ "$load" -ge "$crit" ] 2>/dev/null; then
    echo "APP CRITICAL - load ${load}% | $perf"; exit 2
elif [ "$load" -ge "$warn" ] 2>/dev/null; then
    echo "APP WARNING - load ${load}% | $perf"; exit 1
elif ! [ "$load" -ge 0 ] 2>/dev/null; then
    echo "APP UNKNOWN - app.load is not a number"; exit 3
fi
echo "APP OK - up, load ${load}% | $perf"
exit 0
