# nfssim-lib.sh: shared helpers of the nfs-sim scenario scripts (TAP output, server/mount/holder lifetimes, cleanup).
#
# Sourced by scenario-*.sh (bash).  Everything a scenario starts lives under one private
# temporary directory and is registered for cleanup BEFORE it is started; cleanup runs on any
# exit (trap EXIT), also on failure or when the test runner kills the script.  Nothing here
# sleeps: every wait is on a pipe, a FIFO, a pidfd or a server event (vml-nfssim-ctl wait-event).
#
# Environment: NFSSIM_BINDIR = the build directory holding the four binaries;
# NFSSIM_WRAPPER (optional) = a command prefix for the server and the mounts, e.g.
# "valgrind -q --leak-check=full --log-file=/tmp/vg.%p"; NFSSIM_KEEP=1 prints the logs.

set -u

NFSSIM_BINDIR=${NFSSIM_BINDIR:?NFSSIM_BINDIR must name the build directory of tests/nfs-sim}
SERVER=$NFSSIM_BINDIR/vml-nfssim-server
MOUNT=$NFSSIM_BINDIR/vml-nfssim-mount
CTL_BIN=$NFSSIM_BINDIR/vml-nfssim-ctl
PROBE=$NFSSIM_BINDIR/vml-fcntl-probe

tap_count=0
tap_failed=0
T=""
SERVER_PID=""
declare -a CLEAN_MOUNTS=()
declare -A MOUNT_PID=()
declare -A HOLD_PID=() HOLD_W=() HOLD_R=()
declare -a BG_PIDS=()

# ---------------------------------------------------------------- TAP

ok() { tap_count=$((tap_count + 1)); echo "ok $tap_count - $*"; }
not_ok() { tap_count=$((tap_count + 1)); tap_failed=1; echo "not ok $tap_count - $*"; }
diag() { echo "# $*"; }

# check DESC CMD...: passes when CMD succeeds.
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# expect_rc WANT DESC CMD...: passes when CMD exits with WANT; shows its output otherwise.
expect_rc() {
    local want=$1 desc=$2 out rc
    shift 2
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" = "$want" ]; then
        ok "$desc"
    else
        not_ok "$desc"
        diag "exit $rc (wanted $want): $* -> $out"
    fi
}

# expect_eq GOT WANT DESC
expect_eq() {
    if [ "$1" = "$2" ]; then
        ok "$3"
    else
        not_ok "$3"
        diag "got '$1', wanted '$2'"
    fi
}

skip_all() {
    echo "1..0 # SKIP $*"
    exit 0
}

bail() {
    echo "Bail out! $*"
    exit 1
}

# ---------------------------------------------------------------- cleanup

# our_child PID: PID is still a child of this shell.  Pids are recycled quickly on a busy
# machine (pid_max may be 32768), and bash reaps exited children by itself: a pid recorded
# earlier may name someone else's process by now, which must never be signalled.
our_child() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }               # after "pid (comm) ": state ppid ...
    stat=${stat#* }
    [ "${stat%% *}" = "$$" ]
}

# signal_child SIGNAL PID: send SIGNAL to PID only while it is our child.
signal_child() {
    [ -n "$2" ] && our_child "$2" && kill "-$1" "$2" 2>/dev/null
}

nfssim_cleanup() {
    local name pid mnt
    for name in "${!HOLD_W[@]}"; do
        eval "exec ${HOLD_W[$name]}>&-" 2>/dev/null
        eval "exec ${HOLD_R[$name]}<&-" 2>/dev/null
    done
    for pid in "${HOLD_PID[@]}" "${BG_PIDS[@]}"; do
        signal_child KILL "$pid"
    done
    for pid in "${MOUNT_PID[@]}"; do
        signal_child CONT "$pid"     # a scenario may have stopped it
    done
    # Unmount first (so its daemon exits by itself), the lazy way if the daemon is stuck.
    for mnt in "${CLEAN_MOUNTS[@]}"; do
        fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
    done
    for pid in "${MOUNT_PID[@]}"; do
        signal_child TERM "$pid"
    done
    signal_child TERM "$SERVER_PID"
    for pid in "${HOLD_PID[@]}" "${BG_PIDS[@]}" "${MOUNT_PID[@]}" $SERVER_PID; do
        [ -n "$pid" ] && our_child "$pid" && "$PROBE" pidwait "$pid" --timeout 10 >/dev/null 2>&1
        signal_child KILL "$pid"
    done
    wait 2>/dev/null
    for mnt in "${CLEAN_MOUNTS[@]}"; do
        mountpoint -q "$mnt" 2>/dev/null && umount -l "$mnt" 2>/dev/null
    done
    if [ -n "$T" ] && [ -d "$T" ]; then
        if [ "$tap_failed" != 0 ] || [ "${NFSSIM_KEEP:-0}" = 1 ]; then
            for f in "$T"/*.log; do
                [ -f "$f" ] || continue
                echo "# ---- $f"
                tail -n 40 "$f" | sed 's/^/# /'
            done
        fi
        rm -rf "$T"
    fi
}

# Called at the end of a scenario: the plan, and the exit status.
done_testing() {
    echo "1..$tap_count"
    exit $tap_failed
}

nfssim_init() {
    [ "$(id -u)" = 0 ] || skip_all "needs root (FUSE mounts with allow_other, namespaces)"
    [ -c /dev/fuse ] || skip_all "/dev/fuse is missing"
    command -v fusermount3 >/dev/null || skip_all "fusermount3 (package fuse3) is not installed"
    for b in "$SERVER" "$MOUNT" "$CTL_BIN" "$PROBE"; do
        [ -x "$b" ] || bail "$b is not built"
    done
    trap nfssim_cleanup EXIT
    trap 'exit 1' INT TERM HUP
    T=$(mktemp -d /tmp/nfssim.XXXXXX) || bail "cannot create a temporary directory"
}

# ---------------------------------------------------------------- server, mounts

ctl() { "$CTL_BIN" "$T/ctl.sock" "$@"; }

# Remember the current event number; wait_ev then only matches events after it.
mark() { SEQ=$(ctl seq) || bail "vml-nfssim-ctl seq failed"; }

# wait_ev EVENT HOST [TIMEOUT]: wait for an event newer than the last mark.
wait_ev() {
    ctl wait-event "$1" "$2" --since "${SEQ:-0}" --timeout "${3:-15}" >/dev/null
}

# start_server [server options...]
start_server() {
    local line
    mkfifo "$T/server.ready"
    (close_holder_fds; exec ${NFSSIM_WRAPPER:-} "$SERVER" "$T/srv.sock" "$T/ctl.sock" --ready-fd 3 "$@" \
        3>"$T/server.ready" 2>"$T/server.log") &
    SERVER_PID=$!
    read -r line <"$T/server.ready"
    [ "$line" = ready ] || bail "the server did not start: $(tail -n 5 "$T/server.log")"
    SEQ=0
}

# start_mount HOST: mounts HOST's view at $T/mnt-HOST.
start_mount() {
    local host=$1 line mnt=$T/mnt-$1
    mkdir -p "$mnt"
    rm -f "$T/mount-$host.ready"
    mkfifo "$T/mount-$host.ready"
    CLEAN_MOUNTS+=("$mnt")
    (close_holder_fds; exec ${NFSSIM_WRAPPER:-} "$MOUNT" "$host" "$T/srv.sock" "$mnt" --ready-fd 3 --log-level 2 \
        3>"$T/mount-$host.ready" 2>"$T/mount-$host.log") &
    MOUNT_PID[$host]=$!
    read -r line <"$T/mount-$host.ready"
    [ "$line" = ready ] || bail "the mount of $host did not start: $(tail -n 5 "$T/mount-$host.log")"
}

# ---------------------------------------------------------------- lock holders

# In a child about to exec: close the FIFO ends of the holders, so that a holder sees end of
# input when the script closes its end (bash's "exec {fd}>" descriptors are inherited).
close_holder_fds() {
    local fd
    for fd in "${HOLD_W[@]}" "${HOLD_R[@]}"; do
        eval "exec $fd>&-"
    done
}

# spawn_holder NAME PATH [probe hold options...]: start a process that takes a lock and then
# obeys commands (see vml_fcntl_probe.c), without waiting for the lock (use await_holder).
spawn_holder() {
    local name=$1 path=$2 w r
    shift 2
    mkfifo "$T/hold-$name.in" "$T/hold-$name.out"
    (close_holder_fds; exec "$PROBE" hold "$path" "$@" <"$T/hold-$name.in" >"$T/hold-$name.out" \
        2>"$T/hold-$name.log") &
    HOLD_PID[$name]=$!
    attach_holder "$name"
}

# attach_holder NAME: open our ends of the FIFOs $T/hold-NAME.{in,out} of a holder started
# elsewhere (e.g. inside a host's namespaces); blocks until it has opened its ends.
attach_holder() {
    local name=$1 w r
    exec {w}>"$T/hold-$name.in"
    exec {r}<"$T/hold-$name.out"
    HOLD_W[$name]=$w
    HOLD_R[$name]=$r
}

# await_holder NAME: its first line in HOLD_FIRST ("ready", or the errno name of the
# refusal); returns 0 when it holds the lock.
await_holder() {
    HOLD_FIRST=""
    read -r -t 30 -u "${HOLD_R[$1]}" HOLD_FIRST
    [ "$HOLD_FIRST" = ready ]
}

# start_holder NAME PATH [options...]: spawn_holder + await_holder.
start_holder() {
    spawn_holder "$@"
    await_holder "$1"
}

# holder NAME COMMAND: send a command, print its one-line answer.
holder() {
    local answer=""
    echo "$2" >&"${HOLD_W[$1]}" || { echo "holder $1 is gone"; return 1; }
    read -r -t 30 -u "${HOLD_R[$1]}" answer || { echo "no answer from holder $1"; return 1; }
    echo "$answer"
}

# stop_holder NAME: end of input makes the probe exit (closing its descriptors); waits for it.
stop_holder() {
    local pid=${HOLD_PID[$1]:-} rc=0
    eval "exec ${HOLD_W[$1]}>&-"
    eval "exec ${HOLD_R[$1]}<&-"
    unset "HOLD_W[$1]" "HOLD_R[$1]"
    if [ -n "$pid" ]; then
        wait "$pid" 2>/dev/null
        rc=$?
        unset "HOLD_PID[$1]"
    fi
    return $rc
}

# bg NAME CMD...: run CMD in the background with its output in $T/NAME.out; BG_LAST = its pid.
bg() {
    local name=$1
    shift
    (close_holder_fds; exec "$@" >"$T/$name.out" 2>&1) &
    BG_LAST=$!
    BG_PIDS+=("$BG_LAST")
}

# pidwait PID [SECS]: wait on a pidfd until PID is gone (3: still running after SECS).
pidwait() { "$PROBE" pidwait "$1" --timeout "${2:-15}" >/dev/null; }

probe() { (close_holder_fds; exec "$PROBE" "$@"); }
