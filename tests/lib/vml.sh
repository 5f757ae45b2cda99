# tests/lib/vml.sh: shared bash helpers for the scenario and interop scripts (TAP, temp dir, daemon and guest lifecycles, cleanup).
# shellcheck shell=bash
#
# Source it first thing:   . "$(dirname "$0")/../lib/vml.sh"
#
# Programs come from the environment (meson's test() passes the built ones):
#   VMLOCKD, VMLOCK_HOST, VMLOCKCTL, VMLOCK_PLUGIN (vmlockd.so), VMLOCK_STUB_QEMU
# or, when run by hand, from VML_BUILD_DIR (a meson build directory of this tree).
# VMLOCKD_WRAPPER, when set, is prepended to every vmlockd command line (check.sh runs the
# daemon under valgrind that way).
#
# Rules every script follows (tests/integration/README.md has them in full):
#   - everything lives in one private directory ($VML_TMP) removed on exit, even on failure;
#   - every process started is recorded and stopped by the EXIT trap;
#   - no sleeps: synchronise on `vmlockd -d` returning, pidfds (wait-exit), pipes, exit codes.

set -u

VML_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VML_PYTHON=${VML_PYTHON:-python3}

if [ -n "${VML_BUILD_DIR:-}" ]; then
    : "${VMLOCKD:=$VML_BUILD_DIR/daemon/vmlockd}"
    : "${VMLOCK_HOST:=$VML_BUILD_DIR/tools/vmlock-host}"
    : "${VMLOCKCTL:=$VML_BUILD_DIR/tools/vmlockctl}"
    : "${VMLOCK_PLUGIN:=$VML_BUILD_DIR/driver/vmlockd.so}"
    : "${VMLOCK_STUB_QEMU:=$VML_BUILD_DIR/tools/vmlock-stub-qemu}"
fi
: "${VMLOCKD:=}" "${VMLOCK_HOST:=}" "${VMLOCKCTL:=}" "${VMLOCK_PLUGIN:=}" "${VMLOCK_STUB_QEMU:=}"
: "${VMLOCKD_WRAPPER:=}"

VML_TAP_COUNT=0
VML_TAP_FAILED=0
VML_TMP=""
VML_DAEMON_PIDFILES=()      # pid files of every daemon this script started
declare -gA VML_DAEMON_ADMIN=()    # pid file -> that daemon's admin socket
VML_GUEST_PIDS=()           # stand-in QEMU pids reported by "started NAME pid P"
VML_CHILD_PIDS=()           # background children of this shell (raw clients)
VML_START_NS=$(date +%s%N)

# ---------------------------------------------------------------- TAP

tap_ok() {
    VML_TAP_COUNT=$((VML_TAP_COUNT + 1))
    echo "ok $VML_TAP_COUNT - $*"
}

tap_not_ok() {
    VML_TAP_COUNT=$((VML_TAP_COUNT + 1))
    VML_TAP_FAILED=$((VML_TAP_FAILED + 1))
    echo "not ok $VML_TAP_COUNT - $*"
}

# tap_skip DESC REASON: a test point that could not run here (counted as a skip, not a pass).
tap_skip() {
    VML_TAP_COUNT=$((VML_TAP_COUNT + 1))
    echo "ok $VML_TAP_COUNT - $1 # SKIP ${2:-}"
}

diag() {
    local line
    while IFS= read -r line; do
        echo "# $line"
    done <<<"$*"
}

# tap_check DESC COMMAND...: one test point, passing when COMMAND exits 0.
tap_check() {
    local desc=$1
    shift
    if "$@"; then
        tap_ok "$desc"
    else
        tap_not_ok "$desc"
        return 1
    fi
}

# The whole script cannot run here: a TAP plan that says so (a skip, never a pass).
skip_all() {
    echo "1..0 # SKIP $*"
    exit 0
}

# Print the plan and exit with the script's verdict (the EXIT trap cleans up).
tap_done() {
    diag "wall time: $(vml_elapsed_ms "$VML_START_NS") ms"
    echo "1..$VML_TAP_COUNT"
    [ "$VML_TAP_FAILED" -eq 0 ] && exit 0
    exit 1
}

# A script that cannot continue (its setup failed): report it as a failure, not a skip.
bail_out() {
    tap_not_ok "$*"
    tap_done
}

vml_elapsed_ms() {
    echo $((($(date +%s%N) - $1) / 1000000))
}

# ---------------------------------------------------------------- programs

# vml_require VAR...: skip the whole script unless each named program is built.
vml_require() {
    local var path
    for var in "$@"; do
        path=${!var:-}
        if [ -z "$path" ]; then
            skip_all "$var is not built yet (its meson target does not exist)"
        fi
        if [ ! -e "$path" ]; then
            skip_all "$var ($path) does not exist"
        fi
    done
    command -v "$VML_PYTHON" >/dev/null || skip_all "$VML_PYTHON is not installed"
}

# ---------------------------------------------------------------- running commands

# vml_run COMMAND...: run it, keeping its exit code in VML_RC and its output in
# VML_OUT / VML_ERR (also as files $VML_TMP/out, $VML_TMP/err).
vml_run() {
    "$@" >"$VML_TMP/out" 2>"$VML_TMP/err" </dev/null
    VML_RC=$?
    VML_OUT=$(cat "$VML_TMP/out")
    VML_ERR=$(cat "$VML_TMP/err")
}

# Print what the last vml_run produced, as TAP diagnostics.
vml_show_last() {
    diag "exit code: $VML_RC"
    [ -n "$VML_OUT" ] && diag "stdout: $VML_OUT"
    [ -n "$VML_ERR" ] && diag "stderr: $VML_ERR"
    return 0
}

# expect_rc WANT DESC: the last vml_run exited WANT.
expect_rc() {
    if [ "$VML_RC" -eq "$1" ]; then
        tap_ok "$2"
    else
        tap_not_ok "$2"
        diag "expected exit code $1"
        vml_show_last
        return 1
    fi
}

# expect_text WHERE FRAGMENT DESC: WHERE (out|err) of the last vml_run contains FRAGMENT.
expect_text() {
    local text
    if [ "$1" = out ]; then text=$VML_OUT; else text=$VML_ERR; fi
    if [[ "$text" == *"$2"* ]]; then
        tap_ok "$3"
    else
        tap_not_ok "$3"
        diag "expected std$1 to contain: $2"
        vml_show_last
        return 1
    fi
}

# ---------------------------------------------------------------- temp dir and cleanup

vml_setup() {
    VML_TMP=$(mktemp -d "${TMPDIR:-/tmp}/vml-test.XXXXXX")
    chmod 0700 "$VML_TMP"
    trap vml_cleanup EXIT
    trap 'exit 130' INT TERM HUP
}

# Block until PID has exited (pidfd; no polling).  $2 = timeout in seconds (default 60).
vml_wait_exit() {
    local pid=$1 timeout=${2:-60}
    if [ -n "$VMLOCK_HOST" ] && [ -x "$VMLOCK_HOST" ]; then
        "$VMLOCK_HOST" wait-exit "$pid" --timeout "$timeout" >/dev/null 2>&1
        return
    fi
    "$VML_PYTHON" - "$pid" "$timeout" <<'EOF'
import os, select, sys
try:
    fd = os.pidfd_open(int(sys.argv[1]))
except ProcessLookupError:
    sys.exit(0)
sys.exit(0 if select.select([fd], [], [], float(sys.argv[2]))[0] else 1)
EOF
}

# True when PID has exited: no such process, or a zombie nobody reaped yet (a detached
# daemon's parent may be an init that does not reap, so kill -0 alone would still succeed).
vml_pid_gone() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
    [ -z "$state" ] || [ "$state" = Z ] || [ "$state" = X ]
}

# True when PID runs the program named $2 (guards against signalling a recycled pid).
vml_pid_runs() {
    local cmdline
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
    [[ "$cmdline" == *"$2"* ]]
}

vml_cleanup() {
    local status=$? pid pidfile
    trap - EXIT INT TERM HUP
    for pid in "${VML_GUEST_PIDS[@]}"; do
        if vml_pid_runs "$pid" vmlock-stub-qemu; then
            kill -KILL "$pid" 2>/dev/null && vml_wait_exit "$pid" 10
        fi
    done
    for pid in "${VML_CHILD_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for pidfile in "${VML_DAEMON_PIDFILES[@]}"; do
        vml_stop_pidfile "$pidfile" >/dev/null 2>&1
    done
    if [ -n "$VML_TMP" ] && [ -d "$VML_TMP" ]; then
        if [ "$status" -ne 0 ] && [ -n "${VML_KEEP_TMP:-}" ]; then
            echo "# kept $VML_TMP"
        else
            rm -rf "$VML_TMP"
        fi
    fi
    exit "$status"
}

# Stop the daemon named by a pid file; returns 0 when SIGTERM stopped it.
# The daemon refuses SIGTERM while it holds leases, so first one admin request: owner exits
# are handled before any later request (ARCHITECTURE.md, daemon invariant 2), so the leases
# of guests killed just before are gone when the signal arrives.  A daemon still running
# after that (leases of owners this script did not start) is stopped with
# `vmlockctl shutdown --force`, then SIGKILL; both count as failures.
vml_stop_pidfile() {
    local pidfile=$1 pid admin=${VML_DAEMON_ADMIN[$1]:-}
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [ -z "$pid" ] || vml_pid_gone "$pid"; then
        return 0
    fi
    if [ -n "$admin" ] && [ -S "$admin" ] && [ -x "$VMLOCKCTL" ]; then
        "$VMLOCKCTL" --socket "$admin" status >/dev/null 2>&1
    fi
    kill -TERM "$pid" 2>/dev/null
    vml_wait_exit "$pid" 30 && return 0
    if [ -n "$admin" ] && [ -S "$admin" ] && [ -x "$VMLOCKCTL" ] &&
       "$VMLOCKCTL" --socket "$admin" shutdown --force >/dev/null 2>&1 &&
       vml_wait_exit "$pid" 30; then
        echo "# daemon pid $pid ignored SIGTERM for 30 s: stopped with shutdown --force" >&2
        return 1
    fi
    echo "# daemon pid $pid did not stop: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null
    vml_wait_exit "$pid" 10
    return 1
}

# ---------------------------------------------------------------- the daemon

# vml_daemon_config NAME [CONFIG LINE...]: write the config of daemon NAME with its own
# sockets and log in $VML_TMP; sets VML_SOCK, VML_ADMIN_SOCK, VML_DAEMON_CONF,
# VML_DAEMON_PIDFILE, VML_DAEMON_LOG.  Extra lines are appended verbatim.
vml_daemon_config() {
    local name=$1 line
    shift
    VML_SOCK=${VML_SOCK_OVERRIDE:-$VML_TMP/$name-sock}
    VML_ADMIN_SOCK=$VML_TMP/$name-admin-sock
    VML_DAEMON_CONF=$VML_TMP/$name.conf
    VML_DAEMON_PIDFILE=$VML_TMP/$name.pid
    VML_DAEMON_LOG=$VML_TMP/$name.log
    {
        echo "# written by tests/lib/vml.sh for one test run"
        echo "unix_sock_path = \"$VML_SOCK\""
        echo "admin_unix_sock_path = \"$VML_ADMIN_SOCK\""
        echo "log_level = 2"
        echo "log_outputs = \"2:file:$VML_DAEMON_LOG\""
        for line in "$@"; do
            echo "$line"
        done
    } >"$VML_DAEMON_CONF"
}

# Start the configured daemon in the background (`vmlockd -d` returns once it listens);
# arguments are added to its command line (e.g. -t SECS).
vml_daemon_start() {
    local rc
    VML_DAEMON_PIDFILES+=("$VML_DAEMON_PIDFILE")
    VML_DAEMON_ADMIN[$VML_DAEMON_PIDFILE]=$VML_ADMIN_SOCK
    # shellcheck disable=SC2086  # the wrapper is a command line
    $VMLOCKD_WRAPPER "$VMLOCKD" -d -f "$VML_DAEMON_CONF" -p "$VML_DAEMON_PIDFILE" "$@" \
        >"$VML_TMP/daemon-start.out" 2>&1 </dev/null
    rc=$?
    # check.sh's valgrind pass judges descriptor leaks of the daemons that ran their loop.
    if [ "$rc" -eq 0 ] && [ -n "${VML_DAEMON_PIDS_LOG:-}" ]; then
        { cat "$VML_DAEMON_PIDFILE"; echo; } >>"$VML_DAEMON_PIDS_LOG"
    fi
    if [ "$rc" -ne 0 ]; then
        diag "vmlockd -d exited $rc: $(cat "$VML_TMP/daemon-start.out")"
        [ -f "$VML_DAEMON_LOG" ] && diag "daemon log: $(tail -n 20 "$VML_DAEMON_LOG")"
    fi
    return "$rc"
}

# Crash the daemon on purpose (SIGKILL) and wait until it is gone.  The pid is noted for
# check.sh's valgrind pass, for which a log without an exit summary is otherwise a failure.
vml_daemon_crash() {
    local pid
    pid=$(vml_daemon_pid)
    if [ -n "${VML_DAEMON_KILLED_LOG:-}" ]; then
        echo "$pid" >>"$VML_DAEMON_KILLED_LOG"
    fi
    kill -KILL "$pid" && vml_wait_exit "$pid" 30
}

vml_daemon_stop() {
    vml_stop_pidfile "$VML_DAEMON_PIDFILE"
}

vml_daemon_pid() {
    cat "$VML_DAEMON_PIDFILE"
}

# Run vmlockd in the foreground with arguments (for --test-config); output in VML_OUT/VML_ERR.
vml_daemon_run() {
    # shellcheck disable=SC2086
    vml_run $VMLOCKD_WRAPPER "$VMLOCKD" "$@"
}

# ---------------------------------------------------------------- the plugin and guests

# vml_plugin_config FILE [CONFIG LINE...]: a plugin config pointing at $VML_SOCK; it becomes
# the config vml_host passes (VML_PLUGIN_CONF).
vml_plugin_config() {
    local file=$1 line
    shift
    {
        echo "# written by tests/lib/vml.sh for one test run"
        echo "unix_sock_path = \"$VML_SOCK\""
        for line in "$@"; do
            echo "$line"
        done
    } >"$file"
    VML_PLUGIN_CONF=$file
}

# vml_host COMMAND [ARGS...]: run vmlock-host with the plugin under test and its config.
# A "started NAME pid P" line records P for cleanup and sets VML_GUEST_PID.
vml_host() {
    local plugin=${VML_HOST_PLUGIN:-$VMLOCK_PLUGIN}
    local -a base=("$VMLOCK_HOST" --plugin "$plugin")
    [ -n "${VML_PLUGIN_CONF:-}" ] && base+=(--config "$VML_PLUGIN_CONF")
    local start
    start=$(date +%s%N)
    VML_GUEST_PID=""
    vml_run "${base[@]}" "$@"
    VML_HOST_MS=$(vml_elapsed_ms "$start")
    # Interop scripts name the plugin/daemon pair in VML_SIDE and record each call's wall time.
    if [ -n "${VML_SIDE:-}" ]; then
        diag "$VML_SIDE: vmlock-host $1 took $VML_HOST_MS ms (exit $VML_RC)"
    fi
    if [[ "$VML_OUT" =~ started\ [^\ ]+\ pid\ ([0-9]+) ]]; then
        VML_GUEST_PID=${BASH_REMATCH[1]}
        VML_GUEST_PIDS+=("$VML_GUEST_PID")
    fi
}

# vml_guest_start NAME UUID [vmlock-host start options...]: start a guest, one TAP point for
# "it started"; the stub's pid is left in VML_GUEST_PID.
vml_guest_start() {
    local name=$1 uuid=$2
    shift 2
    vml_host start --name "$name" --uuid "$uuid" "$@"
    if [ "$VML_RC" -eq 0 ] && [ -n "$VML_GUEST_PID" ] && kill -0 "$VML_GUEST_PID" 2>/dev/null; then
        tap_ok "guest $name starts (pid $VML_GUEST_PID)"
    else
        tap_not_ok "guest $name starts"
        vml_show_last
        return 1
    fi
}

# vml_guest_refused NAME UUID [options...] -- FRAGMENT...: starting it fails with exit 1,
# stderr containing every FRAGMENT, and no "started" line (vmlock-host killed the stub).
vml_guest_refused() {
    local name=$1 uuid=$2 fragment ok=1
    shift 2
    local -a opts=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        opts+=("$1")
        shift
    done
    shift
    vml_host start --name "$name" --uuid "$uuid" "${opts[@]}"
    [ "$VML_RC" -eq 1 ] || ok=0
    for fragment in "$@"; do
        [[ "$VML_ERR" == *"$fragment"* ]] || { ok=0; diag "missing in stderr: $fragment"; }
    done
    if [ -n "$VML_GUEST_PID" ]; then
        ok=0
        diag "a refused start printed a started line"
    fi
    if [ "$ok" -eq 1 ]; then
        tap_ok "guest $name is refused: $(head -n 1 <<<"$VML_ERR")"
    else
        tap_not_ok "guest $name is refused with the expected error"
        vml_show_last
        return 1
    fi
}

# Kill a guest's stand-in QEMU with SIGKILL and wait until it is gone.
vml_guest_kill() {
    if ! [[ "$1" =~ ^[0-9]+$ ]]; then
        diag "no guest to kill (pid '$1': it never started)"
        return 1
    fi
    kill -KILL "$1" && vml_wait_exit "$1" 30
}

# ---------------------------------------------------------------- what the daemon holds

# vml_leases: the daemon's leases (vmlockctl --json list) flattened by vml_leases.py, one
# line per lease: "lockspace=L name=N disk=D mode=M pids=,P1,P2, domains=,D1,D2,".
vml_leases() {
    "$VMLOCKCTL" --socket "$VML_ADMIN_SOCK" --json list >"$VML_TMP/list.json" 2>"$VML_TMP/list.err" ||
        { echo "vmlockctl-failed: $(cat "$VML_TMP/list.err")"; return 1; }
    "$VML_PYTHON" "$VML_LIB_DIR/vml_leases.py" <"$VML_TMP/list.json"
}

# expect_lease DESC PATTERN: some lease line contains PATTERN (a fixed string).
expect_lease() {
    local leases
    leases=$(vml_leases) || true
    if grep -qF -- "$2" <<<"$leases"; then
        tap_ok "$1"
    else
        tap_not_ok "$1"
        diag "no lease matches: $2"
        diag "leases: ${leases:-(none)}"
        return 1
    fi
}

# expect_no_lease DESC PATTERN: no lease line contains PATTERN (the list itself must work).
expect_no_lease() {
    local leases
    if ! leases=$(vml_leases); then
        tap_not_ok "$1"
        diag "$leases"
        return 1
    fi
    if grep -qF -- "$2" <<<"$leases"; then
        tap_not_ok "$1"
        diag "unexpected lease: $(grep -F -- "$2" <<<"$leases")"
        return 1
    fi
    tap_ok "$1"
}

# The 64-hex lease name of a disk in indirect mode: SHA-256 of its canonical path.
vml_lease_name() {
    printf %s "$(realpath -m "$1")" | sha256sum | cut -d' ' -f1
}

# A fresh zero-filled disk image.
vml_image() {
    truncate -s 1M "$1"
}

# ---------------------------------------------------------------- interop: a private /run/libvirt

# Re-run this script (with its arguments) in a private mount namespace where /run/libvirt is
# a fresh tmpfs, so libvirt's fixed socket path /run/libvirt/virtlockd-sock can be served
# without touching the host's.  Skips the whole script where that is impossible.
vml_private_run_libvirt() {
    if [ -z "${VML_IN_PRIVATE_NS:-}" ]; then
        [ "$(id -u)" -eq 0 ] || skip_all "needs root for a private mount namespace"
        command -v unshare >/dev/null || skip_all "unshare (util-linux) is not installed"
        local why
        why=$(unshare --mount --propagation private true 2>&1) ||
            skip_all "cannot create a mount namespace here: $why"
        VML_IN_PRIVATE_NS=1 exec unshare --mount --propagation private -- "$BASH" "$0" "$@"
    fi
    local why
    if [ -d /run/libvirt ]; then
        why=$(mount -t tmpfs -o mode=0755 vml-run-libvirt /run/libvirt 2>&1) ||
            skip_all "cannot mount a tmpfs on /run/libvirt: $why"
    else
        # Creating /run/libvirt would touch the host: hide all of /run instead.
        why=$(mount -t tmpfs -o mode=0755 vml-run /run 2>&1 && mkdir /run/libvirt 2>&1) ||
            skip_all "cannot mount a tmpfs on /run: $why"
    fi
}

# Path of libvirt's lockd.so on this machine, or "" (any multiarch directory).
vml_find_lockd_so() {
    local candidate
    for candidate in /usr/lib/*/libvirt/lock-driver/lockd.so /usr/lib64/libvirt/lock-driver/lockd.so \
                     /usr/lib/libvirt/lock-driver/lockd.so; do
        [ -f "$candidate" ] && { echo "$candidate"; return 0; }
    done
    echo ""
}
