#!/bin/bash
# tools/demo.sh: build vmlockd, then show in a private temp dir how a second guest is refused the disk the first one holds.
#
#   tools/demo.sh                         builds into build/ in the checkout
#   VML_BUILD_DIR=/tmp/b tools/demo.sh    builds (or reuses a build) elsewhere
#
# Everything runs in one temporary directory (the daemon's sockets, pid file, log, the lease
# files and the disk image) and is removed at exit, with every process the demo started.
# Exit status 0 when every step behaved as expected.

set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VML_BUILD_DIR:-$ROOT/build}
# shellcheck source=../tests/lib/deps.sh
. "$ROOT/tests/lib/deps.sh"

STEP=0
DEMO=""
DAEMON_PIDFILE=""
STUB_PIDS=()

if [ -t 1 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD="" PLAIN=""; fi

say() {
    STEP=$((STEP + 1))
    printf '\n%s%d. %s%s\n' "$BOLD" "$STEP" "$*" "$PLAIN"
}

# Show a command the way a user would type it, then run it (its output goes to the terminal).
show() {
    printf '$ %s\n' "$*" | sed "s|$BUILD/[a-z]*/||g"
    "$@"
}

fail() {
    printf '\ndemo FAILED: %s\n' "$*" >&2
    exit 1
}

cleanup() {
    local status=$? pid
    trap - EXIT INT TERM HUP
    for pid in "${STUB_PIDS[@]}"; do
        if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q vmlock-stub-qemu; then
            kill -KILL "$pid" 2>/dev/null && "$BUILD/tools/vmlock-host" wait-exit "$pid" --timeout 10
        fi
    done
    if [ -n "$DAEMON_PIDFILE" ] && [ -s "$DAEMON_PIDFILE" ]; then
        pid=$(cat "$DAEMON_PIDFILE")
        kill -TERM "$pid" 2>/dev/null && "$BUILD/tools/vmlock-host" wait-exit "$pid" --timeout 30
    fi
    [ -n "$DEMO" ] && rm -rf "$DEMO"
    exit "$status"
}

say "Installing the build dependencies (apt-get, only what is missing)"
# shellcheck disable=SC2086  # a word list
vml_install_packages $VML_BUILD_PACKAGES || fail "cannot install the build dependencies"

say "Building into $BUILD"
if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" "$ROOT" >"${TMPDIR:-/tmp}/vmlockd-demo-setup.log" 2>&1 ||
        { cat "${TMPDIR:-/tmp}/vmlockd-demo-setup.log"; fail "meson setup failed"; }
fi
ninja -C "$BUILD" >"${TMPDIR:-/tmp}/vmlockd-demo-build.log" 2>&1 ||
    { tail -n 40 "${TMPDIR:-/tmp}/vmlockd-demo-build.log"; fail "the build failed"; }
rm -f "${TMPDIR:-/tmp}/vmlockd-demo-setup.log" "${TMPDIR:-/tmp}/vmlockd-demo-build.log"
VMLOCKD=$BUILD/daemon/vmlockd
HOST=$BUILD/tools/vmlock-host
VMLOCKCTL=$BUILD/tools/vmlockctl
PLUGIN=$BUILD/driver/vmlockd.so
for program in "$VMLOCKD" "$HOST" "$VMLOCKCTL" "$PLUGIN"; do
    [ -e "$program" ] || fail "the build did not produce $program"
done
echo "built: vmlockd, vmlockd.so, vmlock-host, vmlockctl"

DEMO=$(mktemp -d "${TMPDIR:-/tmp}/vmlockd-demo.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
cat >"$DEMO/vmlockd.conf" <<EOF
unix_sock_path = "$DEMO/vmlockd-sock"
admin_unix_sock_path = "$DEMO/vmlockd-admin-sock"
log_outputs = "2:file:$DEMO/vmlockd.log"
EOF
cat >"$DEMO/qemu-vmlockd.conf" <<EOF
unix_sock_path = "$DEMO/vmlockd-sock"
file_lockspace_dir = "$DEMO/leases"
EOF
DISK=$DEMO/images/demo.qcow2
mkdir -p "$DEMO/images"
truncate -s 16M "$DISK"
DAEMON_PIDFILE=$DEMO/vmlockd.pid
export VMLOCK_PLUGIN=$PLUGIN VMLOCK_PLUGIN_CONFIG=$DEMO/qemu-vmlockd.conf

say "Starting vmlockd in $DEMO (its own sockets; lease files in $DEMO/leases)"
show "$VMLOCKD" -d -f "$DEMO/vmlockd.conf" -p "$DAEMON_PIDFILE" || fail "vmlockd did not start"
echo "vmlockd is listening (pid $(cat "$DAEMON_PIDFILE"))"

say "Starting guest vm1 with the disk $DISK"
OUT=$(show "$HOST" start --name vm1 --disk "$DISK") || { echo "$OUT"; fail "vm1 did not start"; }
echo "$OUT"
VM1_PID=$(sed -n 's/^started vm1 pid \([0-9]*\)$/\1/p' <<<"$OUT")
[ -n "$VM1_PID" ] || fail "vmlock-host did not say which pid vm1 has"
STUB_PIDS+=("$VM1_PID")

say "Starting guest vm2 with the same disk: vmlockd must refuse it"
show "$HOST" start --name vm2 --disk "$DISK" 2>"$DEMO/vm2.err"
RC=$?
cat "$DEMO/vm2.err"
[ "$RC" -eq 1 ] || fail "vm2 was not refused (exit $RC)"
grep -q "is locked by domain 'vm1'" "$DEMO/vm2.err" || fail "the refusal does not name vm1"

say "Who holds what: vmlockctl list"
show "$VMLOCKCTL" --socket "$DEMO/vmlockd-admin-sock" list || fail "vmlockctl list failed"

say "vm1's QEMU dies (kill -9 $VM1_PID); vmlockd releases its lease when the process is gone"
show kill -9 "$VM1_PID"
"$HOST" wait-exit "$VM1_PID" --timeout 30 || fail "vm1's QEMU did not exit"

say "Starting vm2 again: now it gets the disk"
OUT=$(show "$HOST" start --name vm2 --disk "$DISK") || { echo "$OUT"; fail "vm2 did not start after vm1 died"; }
echo "$OUT"
VM2_PID=$(sed -n 's/^started vm2 pid \([0-9]*\)$/\1/p' <<<"$OUT")
[ -n "$VM2_PID" ] && STUB_PIDS+=("$VM2_PID")
OUT=$(show "$VMLOCKCTL" --socket "$DEMO/vmlockd-admin-sock" list) || fail "vmlockctl list failed"
echo "$OUT"
grep -q "domain 'vm2'.* pid $VM2_PID" <<<"$OUT" || fail "vmlockctl list does not show vm2 holding the disk"

say "Cleaning up: stopping vm2's QEMU and vmlockd, removing $DEMO"
printf '\ndemo OK: vm2 was refused while vm1 held the disk and got it once vm1 was gone\n'
