# tests/lib/deps.sh: the Debian packages the build, the demo and the tests need, installed with apt-get only when one is missing.
# shellcheck shell=bash
# shellcheck disable=SC2034  # used by the scripts that source this file
#
# Sourced by tools/check.sh and tools/demo.sh.  Debian 12 package names.

# What building needs (libc6-dev is only a Recommends of gcc, so it is named).
VML_BUILD_PACKAGES="meson ninja-build gcc libc6-dev pkg-config libtirpc-dev rpcsvc-proto libssl-dev
    libvirt-dev libxml2-dev libfuse3-dev python3 util-linux coreutils clang libclang-rt-14-dev"
# What running the whole suite needs on top: memcheck and coverage; libvirt's lockd.so and
# virtlockd (interop, conformance); libvirtd, QEMU and virsh (libvirt-e2e); fusermount3
# (nfs-sim's FUSE tier); GlusterFS (nfs-sim's real tier); gnuplot (bench plots); man-db
# (man page rendering check).
VML_TEST_PACKAGES="valgrind lcov libvirt-daemon libvirt-daemon-system libvirt-clients
    qemu-system-x86 qemu-utils fuse3 glusterfs-server glusterfs-client iproute2 gnuplot-nox man-db"

# vml_missing_packages PKG...: print the ones dpkg does not list as installed.
vml_missing_packages() {
    local pkg
    for pkg in "$@"; do
        if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != installed ]; then
            echo "$pkg"
        fi
    done
}

# vml_install_packages PKG...: install what is missing; returns non-zero (with a message)
# when apt cannot.  Nothing runs apt when everything is present.
vml_install_packages() {
    local -a missing
    mapfile -t missing < <(vml_missing_packages "$@")
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "deps: all $# packages are installed"
        return 0
    fi
    echo "deps: installing ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: missing packages (${missing[*]}) and not root: install them or run as root" >&2
        return 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null ||
        { echo "deps: apt-get update failed" >&2; return 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >/dev/null || { echo "deps: apt-get install ${missing[*]} failed" >&2; return 1; }
    echo "deps: installed ${missing[*]}"
}
