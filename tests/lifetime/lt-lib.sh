# tests/lifetime/lt-lib.sh: helpers of the lifetime scenarios on top of tests/lib/vml.sh (admin v2 client, hammers, keeper cleanup).
# shellcheck shell=bash
#
# Source after ../lib/vml.sh:   . "$(dirname "$0")/lt-lib.sh"
# Programs: LT_ADMIN, LT_HAMMER (meson passes them; by hand they come from VML_BUILD_DIR).

if [ -n "${VML_BUILD_DIR:-}" ]; then
    : "${LT_ADMIN:=$VML_BUILD_DIR/tests/lifetime/lt_admin}"
    : "${LT_HAMMER:=$VML_BUILD_DIR/tests/lifetime/lt_hammer}"
    : "${LT_PAUSE_HELPER:=$VML_BUILD_DIR/daemon/vmlockd-pause-helper}"
fi
: "${LT_ADMIN:=}" "${LT_HAMMER:=}" "${LT_PAUSE_HELPER:=}"

LT_KEEPER_PIDS=()       # keepers seen (STATUS keeper_pid): stopped last by the EXIT trap
LT_HAMMERS=()           # coproc-less hammers: "pid:infd:outfd"

# lt_setup: vml_setup, with an EXIT trap that also stops every keeper the script saw.
lt_setup() {
    vml_setup
    trap lt_cleanup EXIT
}

lt_cleanup() {
    local status=$? pid pidfile
    trap - EXIT
    # Guests first (their leases go), then daemons (nothing held: SIGTERM stops them, and
    # each tells its keeper to exit), then any keeper left (a daemon that was SIGKILLed).
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
    for pid in "${LT_KEEPER_PIDS[@]}"; do
        if [ "$pid" != 0 ] && vml_pid_runs "$pid" vmlockd && ! vml_wait_exit "$pid" 10; then
            kill -KILL "$pid" 2>/dev/null && vml_wait_exit "$pid" 10
        fi
    done
    (exit "$status")
    vml_cleanup
}

# lt_require: the lifetime programs besides vml_require's.
lt_require() {
    vml_require VMLOCKD VMLOCK_HOST VMLOCKCTL VMLOCK_PLUGIN VMLOCK_STUB_QEMU LT_ADMIN LT_HAMMER "$@"
}

# lt_status FIELD [ADMIN_SOCK]: one field of STATUS version 2 (empty when it fails).
lt_status() {
    "$LT_ADMIN" "${2:-$VML_ADMIN_SOCK}" status 2>/dev/null | sed -n "s/^$1=//p"
}

# lt_note_keeper [ADMIN_SOCK]: remember the daemon's keeper for the cleanup.
lt_note_keeper() {
    local pid
    pid=$(lt_status keeper_pid "${1:-$VML_ADMIN_SOCK}")
    [ -n "$pid" ] && [ "$pid" != 0 ] && LT_KEEPER_PIDS+=("$pid")
    LT_KEEPER_PID=${pid:-0}
}

# lt_hammer_start NAME ARGS...: a hammer process (lt_hammer ARGS) talking through two fifos;
# returns once it printed "ready".  Every line it prints is kept in $VML_TMP/NAME.out.
lt_hammer_start() {
    local name=$1 infd outfd pid
    shift
    mkfifo "$VML_TMP/$name.in" "$VML_TMP/$name.pipe"
    "$LT_HAMMER" "$@" <"$VML_TMP/$name.in" >"$VML_TMP/$name.pipe" 2>&1 &
    pid=$!
    VML_CHILD_PIDS+=("$pid")
    exec {infd}>"$VML_TMP/$name.in"
    exec {outfd}<"$VML_TMP/$name.pipe"
    : >"$VML_TMP/$name.out"
    eval "LT_HAMMER_IN_$name=$infd LT_HAMMER_OUT_$name=$outfd LT_HAMMER_PID_$name=$pid"
    lt_hammer_read_until "$name" ready
}

# lt_hammer_read_until NAME PREFIX: read the hammer's lines (a 60 s bound on each read, not a
# delay) until one starts with PREFIX; false on end of output or timeout.
lt_hammer_read_until() {
    local name=$1 prefix=$2 outfd line
    outfd=$(eval echo "\$LT_HAMMER_OUT_$name")
    while read -r -t 60 -u "$outfd" line; do
        echo "$line" >>"$VML_TMP/$name.out"
        [[ "$line" == "$prefix"* ]] && return 0
    done
    return 1
}

# lt_hammer_mark NAME: returns once the hammer completed a full round of attempts begun
# after this call.
lt_hammer_mark() {
    local name=$1 infd
    infd=$(eval echo "\$LT_HAMMER_IN_$name")
    echo mark >&"$infd"
    lt_hammer_read_until "$name" marked
}

# lt_hammer_stop NAME: stop it; LT_HAMMER_RESULT = its "attempts=... granted=..." line.
lt_hammer_stop() {
    local name=$1 infd outfd pid
    infd=$(eval echo "\$LT_HAMMER_IN_$name")
    outfd=$(eval echo "\$LT_HAMMER_OUT_$name")
    pid=$(eval echo "\$LT_HAMMER_PID_$name")
    echo stop >&"$infd"
    lt_hammer_read_until "$name" attempts=
    exec {infd}>&- {outfd}<&-
    wait "$pid" 2>/dev/null
    LT_HAMMER_RESULT=$(grep '^attempts=' "$VML_TMP/$name.out")
}

# lt_hammer_never_granted NAME DESC: TAP point: the hammer was never granted a held lock.
lt_hammer_never_granted() {
    if grep -q '^GRANTED' "$VML_TMP/$1.out"; then
        tap_not_ok "$2"
        diag "$(grep '^GRANTED' "$VML_TMP/$1.out" | head -n 5)"
        return 1
    fi
    tap_ok "$2 ($LT_HAMMER_RESULT)"
}

# lt_locked_elsewhere FILE: true when another process holds a lock on byte 0 of FILE (a POSIX
# lock attempt from this separate process conflicts with the daemon's or keeper's OFD lock).
lt_locked_elsewhere() {
    "$VML_PYTHON" -c 'import errno,fcntl,os,sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
except OSError as e:
    sys.exit(0 if e.errno in (errno.EAGAIN, errno.EACCES) else 2)
sys.exit(1)' "$1"
}

# lt_log_has TEXT: the daemon's log has a line containing TEXT (else a diagnostic).
lt_log_has() {
    grep -qF -- "$1" "$VML_DAEMON_LOG" || { diag "not in the log: $1"; return 1; }
}
