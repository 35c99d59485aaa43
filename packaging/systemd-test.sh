#!/usr/bin/env bash
# The packages under a real systemd (`make systemd-test`, run by .ci/run after packaging/test.sh),
# as root on a Debian machine with a Docker engine (tests/docker/setup.sh starts one):
#
#   for each target (Debian 12 and 13, amd64 and arm64: packaging/targets.sh), an image with
#   systemd as PID 1, built here with no registry (mmdebstrap from this machine's apt mirror,
#   `docker import`), cached by a hash of what goes into it; arm64 runs under
#   qemu-user-static (binfmt_misc, registered machine-wide); booted with the flags this host
#   needs (cgroup v1 or v2; a dockerd without every capability cannot run --privileged);
#   .deb: install → enabled and active → `systemctl start` returns once READY (status answers
#   at once) → a dropped machine runs, and an exec command may `systemctl restart` a unit and
#   write beside its script → an invalid machine's error is in `journalctl -p err` →
#   `systemctl reload` rescans → `restart` resumes state → SIGKILL is restarted
#   (Restart=on-failure) → SIGSTOP is restarted by the watchdog → the exposure score →
#   an upgrade restarts the running daemon → purge leaves nothing;
#   .rpm (Debian 12's targets): its scriptlets the same way (`rpm -i --nodeps` in the same
#   Debian container: no RPM distribution can be bootstrapped from what is reachable here):
#   install starts it, upgrade restarts it, erase stops and disables it and leaves nothing;
#   trixie-arm64: no systemd (Debian 13's starts no service under qemu-user): install, the
#   daemon from ExecStart by hand runs a machine, upgrade, purge.
#
# Reuses dist/ and build/pkgtest/upgrade/ (what `make package` and packaging/test.sh built)
# when they are newer than the sources, else builds them. Prints one line per check and ends
# with "N passed, N failed"; exits 1 if any failed.
#   STEWARD_SYSTEMD_KEEP=1   leave the containers running (for a look inside)
#   STEWARD_SYSTEMD_TARGETS="bookworm-amd64 trixie-amd64"   some targets only
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
ROOT=$PWD
WORK=$ROOT/build/systemdtest
TARGETS=${STEWARD_SYSTEMD_TARGETS:-bookworm-amd64 trixie-amd64 bookworm-arm64 trixie-arm64}
C=                             # the container of the target under test
MACHINE=pkgtest
FLAG=/run/steward-pkgtest.up
OWNED=(/opt/steward /usr/bin/steward /usr/lib/systemd/system/steward.service /etc/steward
    /var/lib/steward /usr/share/steward /usr/share/doc/steward
    /etc/systemd/system/multi-user.target.wants/steward.service)
MAX_EXPOSURE=5.5

passed=0
failed=0
started=$SECONDS

ok() { passed=$((passed + 1)); printf 'ok     %s\n' "$1"; }
not_ok() {
    failed=$((failed + 1))
    printf 'FAILED %s\n' "$1"
    if [ -n "${2:-}" ]; then printf '%s\n' "$2" | tail -n 25 | sed 's/^/       | /'; fi
}
check() { # check DESCRIPTION COMMAND...: pass if it exits 0 (its output shown on failure,
    local desc=$1 # its "note:" lines always)
    shift
    if "$@" >"$WORK/check.out" 2>&1; then
        ok "$desc"
        sed -n 's/^note: /       /p' "$WORK/check.out"
    else
        not_ok "$desc" "$(cat "$WORK/check.out")"
        container_gone || return 1
        # the rest would fail for the same reason (another job restarting dockerd, say)
        echo "the container $C is not running any more: $(docker inspect -f '{{.State.Status}}' "$C" 2>&1)"
        echo "$passed passed, $failed failed"
        exit 1
    fi
}
container_gone() { # only once the container was started
    [ -n "${BOOTED:-}" ] && [ "$(docker inspect -f '{{.State.Running}}' "$C" 2>/dev/null)" != true ]
}
wait_for() { # wait_for SECONDS COMMAND...: until the command succeeds
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}
log() { printf -- '-- %s\n' "$*"; }
die() { printf 'systemd-test.sh: error: %s\n' "$*" >&2; exit 2; }
# shellcheck source=packaging/targets.sh
. packaging/targets.sh

# -- the image (packaging/images.sh) and booting it ----------------------------------------
run_flags() { # what `docker run` needs here for systemd as PID 1
    local cgroup missing
    cgroup=$(stat -fc %T /sys/fs/cgroup)
    # --privileged asks for every capability; a dockerd that lacks one (CAP_SYS_RESOURCE in
    # some sandboxes) fails with "unable to apply caps": ask for what it has instead
    missing=$(python3 - "$(pgrep -o -x dockerd || echo self)" <<'EOF'
import sys
names = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
         "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
         "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT",
         "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE",
         "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
         "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND",
         "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"]
caps = next(int(l.split()[1], 16) for l in open(f"/proc/{sys.argv[1]}/status")
            if l.startswith("CapEff:"))
print(" ".join(n for i, n in enumerate(names) if not caps >> i & 1))
EOF
)
    echo "--security-opt seccomp=unconfined --security-opt apparmor=unconfined"
    if [ -z "$missing" ]; then
        echo "--privileged"
    else
        echo "--cap-add ALL"
        for cap in $missing; do echo "--cap-drop $cap"; done
    fi
    # systemd needs a writable cgroup tree: the host's, on v1 (hybrid) and on v2 alike
    echo "--cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw"
    echo "--tmpfs /run --tmpfs /run/lock --tmpfs /tmp --stop-signal RTMIN+3"
    log "cgroup: $cgroup ($([ "$cgroup" = cgroup2fs ] && echo v2 || echo v1)); dockerd lacks: ${missing:-nothing}" >&2
}
boot() { # boot: start the container, wait for systemd to answer
    # shellcheck disable=SC2046  # one flag per word
    docker run -d --name "$C" --hostname steward-systemd-test $(run_flags) "$IMAGE" \
        >/dev/null || return 1
    wait_for 60 docker exec "$C" test -S /run/systemd/private || {
        docker logs "$C" 2>&1 | tail -n 20
        return 1
    }
    # "degraded" is fine (units a container cannot run); only wait until it settled
    wait_for 60 bash -c "docker exec $C systemctl is-system-running | grep -qv -e starting -e initializing"
}
cleanup() {
    [ -n "$C" ] || return 0
    if [ -n "${STEWARD_SYSTEMD_KEEP:-}" ]; then
        echo "container $C kept (docker rm -f $C)"
    else
        docker rm -f "$C" >/dev/null 2>&1
    fi
    C=
}

# -- inside the container ---------------------------------------------------------------------
in_c() { docker exec "$C" "$@"; }
sh_c() { docker exec "$C" bash -c "$1"; }
prop() { in_c systemctl show -p "$1" --value steward; }
main_pid() { prop MainPID; }
status_field() { # status_field PYTHON-EXPRESSION (on `s`, the status JSON)
    sh_c "steward status --json" | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"
}
machine_field() {
    status_field "next((m['$1'] for m in s['machines'] if m['name'] == '$2'), '')"
}
machine_in() { [ "$(machine_field state "$1")" = "$2" ]; }
enabled_and_active() {
    in_c systemctl is-enabled steward && in_c systemctl is-active steward
}
started_when_ready() { # `systemctl start` returns only once READY: status answers at once
    in_c systemctl stop steward || return 1
    in_c systemctl start steward || return 1
    in_c steward status --json >/dev/null || { echo "status did not answer right after start"; return 1; }
    [ "$(prop Type)" = notify ] || { echo "Type=$(prop Type)"; return 1; }
    prop StatusText | grep -q 'machines running' || { echo "StatusText: $(prop StatusText)"; return 1; }
}
drop_machine() { # NAME SCRIPT-BODY: renamed into the machines dir, one complete event
    local name=$1 body=$2 tmp=/etc/steward/.$1.new
    sh_c "rm -rf $tmp && mkdir -p $tmp && printf '#!/bin/sh\n%s\n' '$body' >$tmp/check.sh &&
        chmod 0755 $tmp/check.sh && cat >$tmp/machine.yaml <<EOF
name: $name
version: \"1.0.0\"
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
chmod 0644 $tmp/machine.yaml && mv $tmp /etc/steward/machines/$name"
}
dropped_machine_runs() {
    drop_machine "$MACHINE" "test -e $FLAG"
    wait_for 20 machine_in "$MACHINE" down || { echo "not down"; return 1; }
    in_c touch "$FLAG"
    wait_for 20 machine_in "$MACHINE" up || { echo "not up"; return 1; }
}
exec_can_administer() { # systemctl restart over D-Bus, and a file beside the script
    sh_c 'cat >/run/systemd/system/pkgtest-dummy.service <<EOF
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
EOF
systemctl daemon-reload'
    drop_machine admin 'systemctl restart pkgtest-dummy.service && date +%s%N >restarted'
    wait_for 20 machine_in admin up || { sh_c "journalctl -u steward -n 20 --no-pager"; return 1; }
    in_c test -s /etc/steward/machines/admin/restarted || return 1
    [ "$(in_c systemctl show -p NRestarts --value pkgtest-dummy.service)" != "" ] || return 1
    in_c rm -rf /etc/steward/machines/admin
}
error_in_journal() { # an invalid machine: its error at priority err; info lines are not
    sh_c 'printf "name: broken\n" >/etc/steward/machines/broken.yaml'
    wait_for 20 sh_c "journalctl -p err -u steward --no-pager -o cat | grep -q broken.yaml" || {
        sh_c "journalctl -u steward -n 20 --no-pager -o verbose | grep -e PRIORITY -e MESSAGE"
        return 1
    }
    if sh_c "journalctl -p err -u steward --no-pager -o cat | grep 'steward started'"; then
        echo "an info line is at priority err or above"
        return 1
    fi
    sh_c "journalctl -p info -u steward --no-pager -o cat | grep -q 'steward started'" ||
        { echo "info lines missing"; return 1; }
    in_c rm -f /etc/steward/machines/broken.yaml
}
reload_rescans() {
    local before after
    before=$(status_field "s['reload']['rescans']") || return 1
    in_c systemctl reload steward || return 1
    wait_for 10 bash -c "[ \"\$(docker exec $C steward status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"reload\"][\"rescans\"])')\" -gt $before ]" ||
        { echo "rescans still $before"; return 1; }
    after=$(status_field "s['reload']['rescans']")
    echo "note: rescans $before -> $after"
    wait_for 10 bash -c "[ \"\$(docker exec $C systemctl is-active steward)\" = active ]"
}
restart_resumes() {
    local pid seq
    pid=$(main_pid)
    seq=$(machine_field seq "$MACHINE")
    in_c systemctl restart steward || return 1
    [ "$(main_pid)" != "$pid" ] || { echo "same pid"; return 1; }
    machine_in "$MACHINE" up || { echo "state $(machine_field state "$MACHINE")"; return 1; }
    [ "$(machine_field seq "$MACHINE")" = "$seq" ] || { echo "seq $seq -> $(machine_field seq "$MACHINE")"; return 1; }
}
restarted_after() { # restarted_after HOW SECONDS: the daemon comes back with a new pid
    local how=$1 seconds=$2 pid restarts
    pid=$(main_pid)
    restarts=$(prop NRestarts)
    case $how in
        kill) in_c systemctl kill -s KILL steward ;;
        stop) in_c kill -STOP "$pid" ;;
    esac
    wait_for "$seconds" bash -c "[ \"\$(docker exec $C systemctl show -p NRestarts --value steward)\" -gt $restarts ] &&
        [ \"\$(docker exec $C systemctl is-active steward)\" = active ]" ||
        { echo "not restarted: $(prop ActiveState) $(prop Result) NRestarts=$(prop NRestarts)"; return 1; }
    [ "$(main_pid)" != "$pid" ] || { echo "same pid"; return 1; }
    in_c steward status --json >/dev/null || return 1
    echo "note: Result=$(prop Result) NRestarts=$(prop NRestarts)"
}
watchdog_restarts_stopped() { # a short WatchdogSec= drop-in keeps this fast
    sh_c 'mkdir -p /run/systemd/system/steward.service.d &&
        printf "[Service]\nWatchdogSec=3s\n" >/run/systemd/system/steward.service.d/watchdog.conf &&
        systemctl daemon-reload && systemctl restart steward' || return 1
    restarted_after stop 30 || return 1
    sh_c "journalctl -u steward --no-pager | grep -i 'watchdog timeout'" || return 1
    sh_c 'rm -rf /run/systemd/system/steward.service.d && systemctl daemon-reload &&
        systemctl restart steward'
}
exposure() { # the unit's systemd-analyze security score, as systemd itself computes it
    local score
    score=$(in_c systemd-analyze security steward --no-pager |
        sed -n 's/.*Overall exposure level for steward.service: \([0-9.]*\).*/\1/p')
    echo "note: exposure $score (at most $MAX_EXPOSURE)"
    [ -n "$score" ] && python3 -c "import sys; sys.exit(float('$score') > $MAX_EXPOSURE)"
}
unprivileged() { # packaging/unprivileged.conf, as its comment says to install it
    local seq score
    sh_c 'useradd --system --home-dir /var/lib/steward --shell /usr/sbin/nologin steward &&
        chgrp steward /etc/steward/steward.yaml &&
        mkdir -p /etc/systemd/system/steward.service.d &&
        cp /usr/share/doc/steward/unprivileged.conf /etc/systemd/system/steward.service.d/ &&
        systemctl daemon-reload && systemctl restart steward' || return 1
    [ "$(sh_c 'ps -o user= -p $(systemctl show -p MainPID --value steward)')" = steward ] ||
        { echo "not running as steward"; return 1; }
    seq=$(machine_field seq "$MACHINE")
    in_c rm -f "$FLAG"
    wait_for 20 machine_in "$MACHINE" down || { echo "its command did not run"; return 1; }
    in_c touch "$FLAG"
    wait_for 20 machine_in "$MACHINE" up || return 1
    [ "$(machine_field seq "$MACHINE")" -gt "$seq" ] || return 1
    score=$(in_c systemd-analyze security steward --no-pager |
        sed -n 's/.*Overall exposure level for steward.service: \([0-9.]*\).*/\1/p')
    echo "note: exposure as a dedicated user: $score"
    sh_c 'rm -rf /etc/systemd/system/steward.service.d && chgrp root /etc/steward/steward.yaml &&
        systemctl daemon-reload && systemctl restart steward && userdel steward'
}
upgrade_restarts() { # UPGRADE-COMMAND VERSION: the running daemon is restarted on the new one
    local pid
    pid=$(main_pid)
    sh_c "$1" || return 1
    wait_for 20 in_c steward status --json || return 1
    [ "$(main_pid)" != "$pid" ] || { echo "not restarted (pid $pid)"; return 1; }
    [ "$(status_field "s['steward_version']")" = "$2" ] || { echo "runs $(status_field "s['steward_version']")"; return 1; }
    machine_in "$MACHINE" up || { echo "state $(machine_field state "$MACHINE")"; return 1; }
}
nothing_left() {
    local p left=()
    for p in "${OWNED[@]}"; do
        if in_c test -e "$p" || in_c test -L "$p"; then left+=("$p"); fi
    done
    [ ${#left[@]} -eq 0 ] || { echo "left behind: ${left[*]}"; return 1; }
    ! in_c pgrep -f 'steward run' || { echo "a steward process runs"; return 1; }
    in_c systemctl is-active steward && { echo "unit still active"; return 1; }
    return 0
}

lifecycle() { # FORMAT INSTALL UPGRADE REMOVE (command lines run in the container)
    local fmt=$1 install=$2 upgrade=$3 remove=$4 t=$TARGET
    log "$t $fmt"
    check "$t $fmt: $install" sh_c "$install" || return 1
    check "$t $fmt: installed: enabled and active (the scripts started it)" enabled_and_active
    check "$t $fmt: systemctl start returns once READY (status answers at once)" started_when_ready
    check "$t $fmt: a dropped machine runs (down, then up)" dropped_machine_runs
    if [ "$fmt" = deb ]; then
        check "$t deb: an exec command restarts a unit (systemctl) and writes beside its script" \
            exec_can_administer
        check "$t deb: an invalid machine's error is in journalctl -p err, info lines are not" \
            error_in_journal
        check "$t deb: systemctl reload rescans" reload_rescans
        check "$t deb: restart resumes the machine's state and seq" restart_resumes
        check "$t deb: systemctl kill -s KILL: restarted (Restart=on-failure)" restarted_after kill 30
        check "$t deb: SIGSTOP: restarted by the watchdog (WatchdogSec=3s drop-in)" \
            watchdog_restarts_stopped
        check "$t deb: systemd-analyze security steward" exposure
        check "$t deb: the dedicated-user drop-in: runs as steward, machines run, lower score" \
            unprivileged
    fi
    check "$t $fmt: upgrade to $VERSION2 restarts the running daemon, state kept" \
        upgrade_restarts "$upgrade" "$VERSION2"
    # machines an operator dropped in are theirs: no script deletes them, so they go first
    sh_c "rm -rf /etc/steward/machines/* $FLAG"
    check "$t $fmt: $remove" sh_c "$remove"
    check "$t $fmt: removed: nothing left, nothing running" nothing_left
    sh_c "rm -rf /etc/steward"
}

# -- without systemd (an emulated systemd 257 starts no service: see packaging/README.md) ---------
enabled_not_started() { # the postinst enables the unit, and starts it only under systemd
    in_c test -L /etc/systemd/system/multi-user.target.wants/steward.service || return 1
    ! in_c pgrep -f 'steward run' || { echo "started without systemd"; return 1; }
}
daemon_start() { # the daemon from the unit's ExecStart line, by hand: it answers status
    local exec
    exec=$(in_c sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/steward.service)
    [ -n "$exec" ] || return 1
    docker exec -d "$C" sh -c "exec $exec >>/var/log/steward.log 2>&1" || return 1
    wait_for 60 in_c steward status --json || { in_c tail -n 20 /var/log/steward.log; return 1; }
}
daemon_stop() { # SIGTERM: it exits
    in_c pkill -TERM -f 'steward run' || return 1
    wait_for 30 bash -c "! docker exec $C pgrep -f 'steward run'"
}
upgraded_by_hand() { # the upgrade installs; the daemon then runs it, the machine resumed
    local seq=$1
    sh_c "dpkg -i /srv/steward-up.deb" || return 1
    ! in_c pgrep -f 'steward run' || { echo "started without systemd"; return 1; }
    daemon_start || return 1
    [ "$(status_field "s['steward_version']")" = "$VERSION2" ] ||
        { echo "runs $(status_field "s['steward_version']")"; return 1; }
    wait_for 20 machine_in "$MACHINE" up || { echo "state $(machine_field state "$MACHINE")"; return 1; }
    [ "$(machine_field seq "$MACHINE")" -ge "$seq" ] || { echo "seq $seq -> $(machine_field seq "$MACHINE")"; return 1; }
}
daemon_lifecycle() { # the .deb in a container whose PID 1 is not systemd
    local t=$TARGET seq
    log "$t deb (no systemd: the daemon by hand, as packaging/test.sh does)"
    check "$t deb: dpkg -i /srv/steward.deb" sh_c "dpkg -i /srv/steward.deb" || return 1
    check "$t deb: installed: enabled, not started (no systemd runs)" enabled_not_started
    check "$t deb: the daemon from the unit's ExecStart answers status" daemon_start
    check "$t deb: a dropped machine runs (down, then up)" dropped_machine_runs
    seq=$(machine_field seq "$MACHINE")
    check "$t deb: SIGTERM stops it" daemon_stop
    check "$t deb: upgrade to $VERSION2: the daemon runs it, the machine resumed" \
        upgraded_by_hand "${seq:-0}"
    check "$t deb: SIGTERM stops it" daemon_stop
    sh_c "rm -rf /etc/steward/machines/* $FLAG"
    check "$t deb: dpkg -P steward" sh_c "dpkg -P steward"
    check "$t deb: removed: nothing left, nothing running" nothing_left
}

test_target() { # TARGET: boot its image, the .deb's lifecycle, then the .rpm's (if built)
    local suite=${1%-*} arch=${1#*-} deb deb2 rpm rpm2 t0=$SECONDS
    TARGET=$1
    deb=$(package_file "$TARGET" deb "$VERSION" dist)
    deb2=$(package_file "$TARGET" deb "$VERSION2" "$UP")
    rpm=$(package_file "$TARGET" rpm "$VERSION" dist) || rpm=
    rpm2=$(package_file "$TARGET" rpm "$VERSION2" "$UP") || rpm2=
    # another CPU runs emulated (Debian 12's qemu-user-static): Debian 12's systemd 252 runs
    # every check there; Debian 13's systemd 257 starts no service under qemu-user (not even
    # journald: "Failed to spawn executor" with qemu 7.2, "Failed at step CREDENTIALS" with
    # 10.0), so that target's container runs no systemd and the .deb gets the
    # daemon-by-hand lifecycle (packaging/README.md)
    SYSTEMD=yes
    [ "$arch" = "$(dpkg --print-architecture)" ] || [ "$suite" = bookworm ] || SYSTEMD=no
    log "$TARGET ($(package_version "$TARGET" "$VERSION"), $(suite_python "$suite"), $([ $SYSTEMD = yes ] &&
        echo "under systemd" || echo "emulated, without systemd"))"
    IMAGE=$(ensure_image "$suite" "$arch") || exit 2
    C=steward-systemd-test-$TARGET-$$
    BOOTED=
    if [ $SYSTEMD = yes ]; then
        check "$TARGET: boot: systemd is PID 1 and answers" boot || { cleanup; return 1; }
    else
        check "$TARGET: start (sleep as PID 1)" docker run -d --name "$C" --network none \
            --tmpfs /run --tmpfs /tmp "$IMAGE" sleep infinity || { cleanup; return 1; }
    fi
    BOOTED=yes
    log "started in $((SECONDS - t0)) s"
    docker cp "$deb" "$C:/srv/steward.deb" && docker cp "$deb2" "$C:/srv/steward-up.deb" ||
        die "docker cp failed"

    if [ $SYSTEMD = no ]; then
        daemon_lifecycle
        cleanup
        log "$TARGET: $((SECONDS - t0)) s"
        return
    fi
    lifecycle deb "dpkg -i /srv/steward.deb" "dpkg -i /srv/steward-up.deb" "dpkg -P steward"
    if [ -z "$rpm" ]; then
        :
    elif nothing_left >/dev/null 2>&1; then
        docker cp "$rpm" "$C:/srv/steward.rpm" && docker cp "$rpm2" "$C:/srv/steward-up.rpm" ||
            die "docker cp failed"
        sh_c "rpm --initdb" >/dev/null 2>&1
        # --nodeps: rpm's database here knows no python3.11 (dpkg provides it)
        lifecycle rpm "rpm -i --nodeps /srv/steward.rpm" "rpm -U --nodeps /srv/steward-up.rpm" \
            "rpm -e --nodeps steward"
    else
        not_ok "$TARGET rpm: not tested: the deb test left files behind"
    fi
    cleanup
    log "$TARGET: $((SECONDS - t0)) s"
}

# -- main -------------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "run as root (it installs mmdebstrap and runs containers)"
docker info >/dev/null 2>&1 || die "no Docker engine answers (make docker-setup)"
mkdir -p "$WORK"
trap cleanup EXIT
trap 'exit 130' INT TERM

VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' steward/__init__.py)
VERSION2=$(python3 -c 'import re,sys; r=[int(x) for x in re.match(r"\d+(\.\d+)*", sys.argv[1])[0].split(".")]; r[-1]+=1; print(".".join(map(str, r)))' "$VERSION")
UP=build/pkgtest/upgrade         # packaging/test.sh's upgrade packages
current=()
upgrade=()
for target in $TARGETS; do
    suite_python "${target%-*}" >/dev/null && qemu_arch "${target#*-}" >/dev/null
    for fmt in deb rpm; do
        if f=$(package_file "$target" $fmt "$VERSION" dist); then current+=("$f"); fi
        if f=$(package_file "$target" $fmt "$VERSION2" "$UP"); then upgrade+=("$f"); fi
    done
done
fresh() { # every file exists and is newer than the sources it is built from
    local f
    for f in "$@"; do
        [ -s "$f" ] || return 1
        [ -z "$(find steward pyproject.toml packaging/{build.sh,targets.sh,nfpm.yaml,launcher.sh,steward.service,steward.yaml,scripts} \
            -newer "$f" -type f -print -quit)" ] || return 1
    done
}
if ! fresh "${current[@]}"; then
    log "building $VERSION (make package)"
    check "make package" bash -c "STEWARD_PKG_TARGETS='$TARGETS' make package >'$WORK/build.log' 2>&1" || exit 1
fi
if ! fresh "${upgrade[@]}"; then
    log "building $VERSION2 (the upgrade)"
    check "build $VERSION2" bash -c "STEWARD_PKG_TARGETS='$TARGETS' STEWARD_PKG_VERSION=$VERSION2 STEWARD_PKG_DIST='$ROOT/$UP' bash packaging/build.sh >>'$WORK/build.log' 2>&1" || exit 1
fi

for target in $TARGETS; do
    test_target "$target"
done

log "$((SECONDS - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
