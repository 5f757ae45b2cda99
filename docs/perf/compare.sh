#!/bin/bash
# compare.sh: the measurements behind docs/performance.md: vmlockd.so+vmlockd against libvirt's lockd.so+virtlockd, interleaved in one run per mode, in a private /run/libvirt.
#
#   VML_BUILD_DIR=/path/to/build docs/perf/compare.sh [OUTDIR]
#
# Needs root (a private mount namespace for virtlockd's fixed socket), libvirt-daemon (lockd.so,
# virtlockd) and gnuplot-nox.  Writes OUTDIR/*.txt (the tables), *.json and *.png (default: the
# directory of this script); the tables go to stderr as they come.  Sizes can be lowered for a quick look: N=2000 DISK_REPS=20
# FILL=19000 FILL_CYCLES=200.  Nothing here is a test: the figures are reported, never compared with bounds.
# PLACEMENT=free (default: the scheduler places every process), same (the bench, every daemon
# and its helpers on CPU 0) or split (the bench on CPU 0, every daemon on CPU 1): on a VM an
# idle CPU's wake-up costs tens of microseconds, so unpinned figures are bimodal.
# shellcheck source=../../tests/lib/vml.sh
. "$(dirname "$0")/../../tests/lib/vml.sh"
: "${VMLOCK_BENCH:=${VML_BUILD_DIR:+$VML_BUILD_DIR/tools/vmlock-bench}}"
vml_require VMLOCKD VMLOCK_PLUGIN VMLOCK_STUB_QEMU VMLOCK_BENCH
OUT=${1:-$(dirname "$0")/${PLACEMENT:-free}}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
LOCKD_SO=${VML_LOCKD_SO:-$(vml_find_lockd_so)}
VIRTLOCKD=${VML_VIRTLOCKD:-/usr/sbin/virtlockd}
[ -n "$LOCKD_SO" ] && [ -x "$VIRTLOCKD" ] || skip_all "libvirt-daemon (lockd.so, virtlockd) is not installed"
vml_private_run_libvirt "$@"
vml_setup

PLACEMENT=${PLACEMENT:-free}
PIN_BENCH=()
PIN_ARGS=()
case $PLACEMENT in
free) ;;
same) PIN_BENCH=(taskset -c 0); PIN_ARGS=(--daemon-cpu 0); VMLOCKD_WRAPPER="taskset -c 0" ;;
split) PIN_BENCH=(taskset -c 0); PIN_ARGS=(--daemon-cpu 1); VMLOCKD_WRAPPER="taskset -c 1" ;;
*) bail_out "PLACEMENT must be free, same or split, not '$PLACEMENT'" ;;
esac
echo "# placement: $PLACEMENT" >&2

N=${N:-5000}
DISK_REPS=${DISK_REPS:-30}
DISKS=${DISKS:-1,4,16,64,256}
HANDOFF=${HANDOFF:-2000}
PARALLEL_N=${PARALLEL_N:-1000}
FILL_CYCLES=${FILL_CYCLES:-1000}
# One descriptor per held lease: the daemon can hold at most its RLIMIT_NOFILE less a few.
HARD_NOFILE=$(ulimit -Hn)
FILL=${FILL:-$((HARD_NOFILE > 100100 ? 100000 : HARD_NOFILE - 500))}
ulimit -Sn "$HARD_NOFILE"

# vmlockd on a socket of its own; virtlockd on the private /run/libvirt/virtlockd-sock.
# The daemon as deployed: its default log level (warnings), so nothing is logged per request.
VML_SOCK=$VML_TMP/vmlockd-sock
VML_ADMIN_SOCK=$VML_TMP/vmlockd-admin-sock
VML_DAEMON_CONF=$VML_TMP/vmlockd.conf
VML_DAEMON_PIDFILE=$VML_TMP/vmlockd.pid
VML_DAEMON_LOG=$VML_TMP/vmlockd.log
{
    echo "unix_sock_path = \"$VML_SOCK\""
    echo "admin_unix_sock_path = \"$VML_ADMIN_SOCK\""
    echo "log_outputs = \"3:file:$VML_DAEMON_LOG\""
} >"$VML_DAEMON_CONF"
vml_daemon_start || bail_out "vmlockd -d starts"
VMLOCKD_SOCK=$VML_SOCK
VMLOCKD_PIDFILE=$VML_DAEMON_PIDFILE
VIRTLOCKD_PIDFILE=$VML_TMP/virtlockd.pid
echo "log_outputs = \"3:file:$VML_TMP/virtlockd.log\"" >"$VML_TMP/virtlockd.conf"
VML_DAEMON_PIDFILES+=("$VIRTLOCKD_PIDFILE")
$VMLOCKD_WRAPPER "$VIRTLOCKD" -d -f "$VML_TMP/virtlockd.conf" -p "$VIRTLOCKD_PIDFILE" </dev/null ||
    bail_out "virtlockd -d starts"

# Direct mode (locks on the images) and indirect mode (lease files in a lockspace).
echo "unix_sock_path = \"$VMLOCKD_SOCK\"" >"$VML_TMP/vmlockd-direct.conf"
echo "# direct mode" >"$VML_TMP/lockd-direct.conf"
{
    echo "unix_sock_path = \"$VMLOCKD_SOCK\""
    echo "file_lockspace_dir = \"$VML_TMP/vmlockd-leases\""
} >"$VML_TMP/vmlockd-indirect.conf"
echo "file_lockspace_dir = \"$VML_TMP/lockd-leases\"" >"$VML_TMP/lockd-indirect.conf"

mkdir -p "$VML_TMP/work"
bench() {
    local name=$1 conf=$2 lockd_conf=$3
    shift 3
    "${PIN_BENCH[@]}" "$VMLOCK_BENCH" "${PIN_ARGS[@]}" --plugin "$VMLOCK_PLUGIN" --config "$VML_TMP/$conf" \
        --pidfile "$VMLOCKD_PIDFILE" --socket "$VMLOCKD_SOCK" --label vmlockd \
        --vs "$LOCKD_SO:$VML_TMP/$lockd_conf" --vs-pidfile "$VIRTLOCKD_PIDFILE" \
        --vs-socket /run/libvirt/virtlockd-sock --vs-label lockd \
        --stub "$VMLOCK_STUB_QEMU" --workdir "$VML_TMP/work" --json-out "$OUT/$name.json" "$@"
}

# run NAME BENCH-ARGS...: the table to OUT/NAME.txt and the same results to OUT/NAME.json.
run() {
    local name=$1
    shift
    echo "==> $name: $*" >&2
    if ! bench "$name" "$@" >"$OUT/$name.txt" 2>"$VML_TMP/$name.err"; then
        tap_not_ok "$name"
        diag "$(cat "$VML_TMP/$name.err")"
        return 1
    fi
    tap_ok "$name"
    cat "$OUT/$name.txt" >&2
}

run latency vmlockd-direct.conf lockd-direct.conf --floor --plot "$OUT/latency.png" latency "$N"
# vmlockd against the floor alone: the same interleaving without libvirt's client code running
# in the bench between vmlockd's cycles (it evicts caches, and inflates every figure of the
# three-way run, the daemons' CPU included).
echo "==> floor: vmlockd and the floor daemon, $N cycles" >&2
if "${PIN_BENCH[@]}" "$VMLOCK_BENCH" "${PIN_ARGS[@]}" --plugin "$VMLOCK_PLUGIN" --config "$VML_TMP/vmlockd-direct.conf" \
        --pidfile "$VMLOCKD_PIDFILE" --label vmlockd --floor --stub "$VMLOCK_STUB_QEMU" \
        --workdir "$VML_TMP/work" --json-out "$OUT/floor.json" --plot "$OUT/floor.png" \
        latency "$N" >"$OUT/floor.txt" 2>"$VML_TMP/floor.err"; then
    tap_ok "floor"
    cat "$OUT/floor.txt" >&2
else
    tap_not_ok "floor"
    diag "$(cat "$VML_TMP/floor.err")"
fi
run disks-direct vmlockd-direct.conf lockd-direct.conf --reps "$DISK_REPS" \
    --plot "$OUT/disks-direct.png" disks "$DISKS"
run disks-indirect vmlockd-indirect.conf lockd-indirect.conf --reps "$DISK_REPS" \
    --plot "$OUT/disks-indirect.png" disks "$DISKS"
run handoff vmlockd-direct.conf lockd-direct.conf --plot "$OUT/handoff.png" handoff "$HANDOFF"
run parallel vmlockd-direct.conf lockd-direct.conf parallel 4 "$PARALLEL_N"
# Many leases: vmlockd only (virtlockd would take one ACQUIRE_RESOURCE round trip per lease), on
# a freshly started daemon so that its VmRSS before the fill is a baseline.
vml_daemon_stop
vml_daemon_start || bail_out "vmlockd -d restarts"
echo "==> fill: $FILL leases (hard RLIMIT_NOFILE here: $HARD_NOFILE)" >&2
if "${PIN_BENCH[@]}" "$VMLOCK_BENCH" "${PIN_ARGS[@]}" --plugin "$VMLOCK_PLUGIN" --config "$VML_TMP/vmlockd-direct.conf" \
        --pidfile "$VMLOCKD_PIDFILE" --socket "$VMLOCKD_SOCK" --label vmlockd \
        --stub "$VMLOCK_STUB_QEMU" --workdir "$VML_TMP/work" --json-out "$OUT/fill.json" \
        fill "$FILL" "$FILL_CYCLES" >"$OUT/fill.txt" 2>"$VML_TMP/fill.err"; then
    tap_ok "fill"
    cat "$VML_TMP/fill.err" "$OUT/fill.txt" >&2
else
    tap_not_ok "fill"
    diag "$(cat "$VML_TMP/fill.err")"
fi
# Direct-mode leases (the disk images themselves), on a fresh daemon again: the fill above
# holds lease files, whose generation lives in the file, not in the daemon.
vml_daemon_stop
vml_daemon_start || bail_out "vmlockd -d restarts"
mkdir -p "$VML_TMP/direct"
ln -sf "$VMLOCKD_PIDFILE" "$VML_TMP/direct/pid"
ln -sf "$VMLOCKD_SOCK" "$VML_TMP/direct/sock"
echo "==> direct-fill: $FILL direct-mode leases" >&2
if "$VML_PYTHON" "$(dirname "$0")/direct_fill.py" "$VML_TMP/direct" "$FILL" \
        >"$OUT/direct-fill.txt" 2>"$VML_TMP/direct-fill.err"; then
    tap_ok "direct-fill"
    cat "$OUT/direct-fill.txt" >&2
else
    tap_not_ok "direct-fill"
    diag "$(cat "$VML_TMP/direct-fill.err")"
fi
tap_done
