#!/usr/bin/env bash
# Make a Docker engine and the test image available, on a Debian box, as root:
#   - Debian's docker.io (dockerd) and busybox-static, installed when missing;
#   - dockerd started in the background when no engine answers, and waited for;
#   - steward-test/busybox:latest imported from the static busybox binary (no registry is
#     reachable: `docker import` of a tar holding /bin/busybox and its applet links).
# Idempotent: run it again and it does nothing that is already done.
#   DOCKERD_LOG  where a dockerd started here logs (default /tmp/steward-dockerd.log)
#   DOCKER_WAIT  seconds to wait for the engine to answer (default 60)
set -euo pipefail

IMAGE=steward-test/busybox:latest
DOCKERD_LOG=${DOCKERD_LOG:-/tmp/steward-dockerd.log}
DOCKER_WAIT=${DOCKER_WAIT:-60}

say() { echo "docker-setup: $*"; }
die() { echo "docker-setup: error: $*" >&2; exit 1; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker >/dev/null || need+=(docker.io)
[ -x /bin/busybox ] || need+=(busybox-static)
if ((${#need[@]})); then
    [ "$(id -u)" = 0 ] || die "need root to install: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! engine_answers; then
    [ "$(id -u)" = 0 ] || die "no Docker engine answers and only root can start dockerd"
    command -v dockerd >/dev/null || die "no dockerd binary (install docker.io)"
    say "no engine answers; starting dockerd (log: $DOCKERD_LOG)"
    # setsid: the engine outlives this script and the CI step that ran it
    setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    pid=$!
    deadline=$((SECONDS + DOCKER_WAIT))
    until engine_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            die "dockerd exited while starting (log above, full log in $DOCKERD_LOG)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            die "dockerd did not answer within ${DOCKER_WAIT}s (log in $DOCKERD_LOG)"
        fi
        sleep 0.5
    done
fi
say "engine $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?') answers"

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
    busybox=$(command -v busybox || true)
    [ -n "$busybox" ] || die "no busybox binary (install busybox-static)"
    command -v file >/dev/null && file -L "$busybox" 2>/dev/null | grep -q 'dynamically' \
        && die "$busybox is dynamically linked (install busybox-static)"
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root/bin" "$root/tmp"
    cp "$busybox" "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    tar -C "$root" -c . | docker import \
        --change 'CMD ["/bin/busybox","sleep","3600"]' \
        --change 'ENV PATH=/bin' \
        --message 'steward test image: static busybox' \
        - "$IMAGE" >/dev/null
    say "imported $IMAGE"
fi
say "image $IMAGE ready"
