# The targets the packages are built for and tested on: a Debian suite and an architecture
# ("bookworm-amd64", "trixie-arm64"), their file names, and their Debian images. Sourced by
# build.sh (it compiles and runs a cross-built payload in the target's image) and by
# systemd-test.sh (it boots the images with systemd as PID 1). Images need root and a Docker
# engine.
#
#   package_file TARGET FORMAT VERSION DIR
#                              the path of TARGET's package of FORMAT (deb, rpm); fails when
#                              that format is not built for TARGET (rpm: Debian 12's only)
#   ensure_image SUITE ARCH    prints the image's tag, building it first if it is not there:
#                              mmdebstrap --variant=minbase of SUITE for ARCH (Debian names:
#                              amd64, arm64) from the mirror this machine's apt uses, with
#                              systemd, the suite's python3.X, dbus, procps and rpm, then
#                              `docker import` with systemd as its command. The tag is a hash
#                              of the suite, the architecture, the package list and this
#                              recipe, so an image is built once and reused until one changes.
#
# A foreign architecture runs under Debian's qemu-user-static: ensure_emulation installs it
# and registers its binfmt_misc handler with the kernel (the F flag: the kernel holds the
# emulator open, so it works inside containers and chroots). That registration is for the
# whole machine, not this script: every aarch64 binary on it runs under qemu from then on
# (harmless on a CI machine; `echo -1 >/proc/sys/fs/binfmt_misc/qemu-aarch64` removes it).
#
# The caller defines die() and log().

suite_python() { # the interpreter a suite ships, the one the packages depend on
    case $1 in
        bookworm) echo python3.11 ;; # Debian 12
        trixie) echo python3.13 ;;   # Debian 13
        *) die "unknown suite '$1' (bookworm or trixie)" ;;
    esac
}

suite_release() { # Debian's release number
    case $1 in
        bookworm) echo 12 ;;
        trixie) echo 13 ;;
        *) die "unknown suite '$1' (bookworm or trixie)" ;;
    esac
}

qemu_arch() { # Debian architecture -> the kernel's / qemu's name
    case $1 in
        amd64) echo x86_64 ;;
        arm64) echo aarch64 ;;
        *) die "unknown architecture '$1' (amd64 or arm64)" ;;
    esac
}

package_version() { # TARGET VERSION: the packages' version
    # Debian 13's carry +deb13: distinct files, and above the Debian 12 package of the same
    # version, so a node upgraded to Debian 13 moves onto it
    case ${1%-*} in
        bookworm) echo "$2" ;;
        *) echo "$2+deb$(suite_release "${1%-*}")" ;;
    esac
}

package_file() { # TARGET FORMAT VERSION DIR
    local arch=${1#*-} version
    version=$(package_version "$1" "$3")
    case $2 in
        deb) echo "$4/steward_${version}_$arch.deb" ;;
        # RHEL 8/9 have python3.11 (AppStream); no RPM distribution ships python3.13 as the
        # package of that name: the rpm is built from the Debian 12 payloads only
        rpm) [ "${1%-*}" = bookworm ] && echo "$4/steward-$version.$(qemu_arch "$arch").rpm" ;;
        *) die "unknown format $2 (deb or rpm)" ;;
    esac
}

host_mirror() { # the Debian mirror this machine's apt uses (deb822 or one-line sources)
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
        2>/dev/null | sed -n -e 's/^URIs: *//p' -e 's/^deb \(\[[^]]*\] \)\?\([^ ]*\) .*/\2/p' |
        tr ' ' '\n' | grep -v -e security -e '^$' | head -n 1
}

host_security_mirror() {
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
        2>/dev/null | sed -n -e 's/^URIs: *//p' -e 's/^deb \(\[[^]]*\] \)\?\([^ ]*\) .*/\2/p' |
        tr ' ' '\n' | grep -e security | head -n 1
}

apt_install() { # apt_install PACKAGE...: those missing, quietly
    local missing=() p
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    log "apt-get install ${missing[*]}" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null; } || die "cannot install ${missing[*]}"
}

ensure_emulation() { # ensure_emulation ARCH: binaries of ARCH run on this machine
    local arch=$1 name binfmt=/proc/sys/fs/binfmt_misc
    [ "$arch" = "$(dpkg --print-architecture)" ] && return 0
    name=$(qemu_arch "$arch")
    apt_install qemu-user-static
    mountpoint -q $binfmt || mount -t binfmt_misc binfmt_misc $binfmt ||
        die "cannot mount binfmt_misc (the kernel needs CONFIG_BINFMT_MISC)"
    if [ ! -e "$binfmt/qemu-$name" ]; then
        log "registering qemu-$name with binfmt_misc (machine-wide)" >&2
        cat "/usr/lib/binfmt.d/qemu-$name.conf" >$binfmt/register ||
            die "cannot register /usr/lib/binfmt.d/qemu-$name.conf"
    fi
    grep -qx enabled "$binfmt/qemu-$name" || die "$binfmt/qemu-$name is disabled"
}

image_packages() { echo "systemd,systemd-sysv,$(suite_python "$1"),dbus,procps,rpm"; }

build_image() { # build_image SUITE ARCH TAG: a minbase rootfs with systemd, imported as TAG
    local suite=$1 arch=$2 tag=$3 mirror security rootfs
    rootfs=$(mktemp --tmpdir --suffix=.tar "steward-rootfs-$suite-$arch.XXXXXX")
    mirror=$(host_mirror)
    security=$(host_security_mirror)
    [ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list*"
    apt_install mmdebstrap
    local mirrors=("$mirror")
    [ -z "$security" ] || mirrors+=("deb $security $suite-security main")
    mmdebstrap --quiet --architectures="$arch" --variant=minbase \
        --include="$(image_packages "$suite")" "$suite" "$rootfs" "${mirrors[@]}" ||
        { rm -f "$rootfs"; die "mmdebstrap $suite $arch failed"; }
    # (this engine's `docker import --platform` does not record the architecture: the image
    # says amd64 whatever it holds, and runs through binfmt_misc all the same)
    docker import --change 'ENV container=docker' --change 'CMD ["/lib/systemd/systemd"]' \
        --message "steward packaging: Debian $suite $arch" "$rootfs" "$tag" >/dev/null ||
        { rm -f "$rootfs"; die "docker import failed"; }
    rm -f "$rootfs"
}

image_tag() { # image_tag SUITE ARCH: content-addressed
    local hash
    hash=$({ echo "$1 $2 $(image_packages "$1")"; declare -f host_mirror host_security_mirror build_image; } |
        sha256sum | cut -c1-16)
    echo "steward-test/systemd-$1-$2:$hash"
}

ensure_image() { # ensure_image SUITE ARCH: print the tag, after building it if need be
    local suite=$1 arch=$2 tag t0=$SECONDS
    tag=$(image_tag "$suite" "$arch")
    ensure_emulation "$arch"
    if ! docker image inspect "$tag" >/dev/null 2>&1; then
        log "building image $tag (mmdebstrap $suite $arch: $(image_packages "$suite"))" >&2
        build_image "$suite" "$arch" "$tag"
        log "image built in $((SECONDS - t0)) s" >&2
    fi
    echo "$tag"
}
