#!/bin/bash
# tests/faultinj/run.sh: the fault-injection loop against a built tree: every core scenario x every listed libc call, N = 1, 2, ... until no fault is hit.
#
#   tests/faultinj/run.sh BUILD [quick|full] [faultloop.py options...]
#
# BUILD is a meson build directory of this tree (plain or ASan: under ASan the shim is
# preloaded before the sanitizer runtime, which forwards to it).  "quick" (default; what
# tools/check.sh runs through `meson test --suite faultinj-quick`): transient faults for all
# 18 call families and persistent ones for open, fcntl, pwrite, fsync, accept4, over 8
# scenarios: about 700 faults in 3600 test points, 3 minutes on 2 cores (plain build).
# "full": persistent faults for every family too (about twice as long).
# Output: TAP on stdout; the last lines are "faultinj: SCENARIO CALL MODE: faults injected N,
# survived M" and the total.  Needs root.  Exit status 0 when every point passed (known,
# reported bugs are TAP TODO points).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-}
PROFILE=${2:-quick}
if [ -z "$BUILD" ] || [ ! -d "$BUILD" ]; then
    echo "usage: tests/faultinj/run.sh BUILD [quick|full] [options...]" >&2
    exit 2
fi
shift
[ $# -gt 0 ] && shift
BUILD=$(cd "$BUILD" && pwd)
if ! ninja -C "$BUILD" daemon/vmlockd tests/faultinj/libvmlfaultinj.so >/dev/null; then
    echo "faultinj: cannot build vmlockd and the shim in $BUILD" >&2
    exit 1
fi
VMLOCKD=$BUILD/daemon/vmlockd VMLFAULTINJ=$BUILD/tests/faultinj/libvmlfaultinj.so \
    exec python3 "$ROOT/tests/faultinj/faultloop.py" --profile "$PROFILE" "$@"
