#!/bin/bash
# holder_close.sh: a QEMU that closes its holder connection but lives on is SIGTERMed, then SIGKILLed; its lease is released only once it is dead.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCKD VMLOCK_HOST VMLOCKCTL VMLOCK_PLUGIN
vml_setup

U1=55555555-5555-4555-8555-000000000001
U2=55555555-5555-4555-8555-000000000002
GRACE_MS=5000

vml_daemon_config vmlockd "owner_kill_grace_ms = $GRACE_MS"
vml_daemon_start || bail_out "vmlockd -d starts"
vml_plugin_config "$VML_TMP/plugin.conf"
IMG=$VML_TMP/disk.img
vml_image "$IMG"

# The "QEMU": a raw client that registers for its own pid (so its connection is the holder
# connection), ignores SIGTERM and reports it.
coproc HOLDER {
    exec "$VML_PYTHON" "$VML_LIB_DIR/vml_rawclient.py" --socket "$VML_SOCK" --ignore-sigterm \
        register vmh 5 self "$U1" hold
}
HPID=$HOLDER_PID
VML_CHILD_PIDS+=("$HPID")
HOLDER_OUT=${HOLDER[0]}
HOLDER_IN=${HOLDER[1]}

# expect_line WANT DESC: the next line from the holder is WANT (30 s bound on a pipe read).
expect_line() {
    local line=""
    if read -r -t 30 -u "$HOLDER_OUT" line && [ "$line" = "$1" ]; then
        tap_ok "$2"
    else
        tap_not_ok "$2"
        diag "expected '$1' from the holder, got '${line}'"
        return 1
    fi
}

expect_line ok "the holder registers for its own pid $HPID" || bail_out "holder set-up"
expect_line ready "the holder is ready" || bail_out "holder set-up"

# libvirtd acquires for it at CPU start, over its own short-lived connection.
vml_host acquire --pid "$HPID" --name vmh --uuid "$U1" --id 5 --disk "$IMG"
expect_rc 0 "vmlock-host acquires the disk for the holder's pid"
expect_lease "the lease is held for the holder" "name=$IMG disk=$IMG mode=exclusive pids=,$HPID, domains=,vmh,"

# The holder reports "closed" once close(2) returned and "sigterm" when the daemon's signal
# arrives; the daemon may act before the holder prints, so either order is right.
echo close >&"$HOLDER_IN"
REPORTS=""
for _ in 1 2; do
    LINE=""
    read -r -t 30 -u "$HOLDER_OUT" LINE
    REPORTS="$REPORTS $LINE"
done
case "$REPORTS" in
    " closed sigterm" | " sigterm closed")
        tap_ok "the holder closes its connection, stays alive, and the daemon sends it SIGTERM" ;;
    *)
        tap_not_ok "the holder closes its connection, stays alive, and the daemon sends it SIGTERM"
        diag "holder reported:$REPORTS" ;;
esac

# Between SIGTERM and SIGKILL (GRACE_MS) the process lives, so the lease must still be held.
# The check counts only if the process was still alive after the daemon answered.
LEASES_DURING=$(vml_leases)
if ! vml_pid_gone "$HPID"; then
    if grep -qF "name=$IMG disk=$IMG mode=exclusive pids=,$HPID," <<<"$LEASES_DURING"; then
        tap_ok "while the holder ignores SIGTERM its lease stays held"
    else
        tap_not_ok "while the holder ignores SIGTERM its lease stays held"
        diag "leases: ${LEASES_DURING:-(none)}"
    fi
else
    tap_not_ok "the holder was still alive for the check (SIGKILL came within ${GRACE_MS} ms)"
fi
vml_guest_refused vm2 "$U2" --disk "$IMG" -- "is locked by domain 'vmh'"

# Bounded: a daemon that never kills the holder must fail this test, not hang it.
if ! vml_wait_exit "$HPID" 60; then
    tap_not_ok "the holder is killed within 60 s"
    kill -KILL "$HPID"
fi
wait "$HPID" 2>/dev/null
STATUS=$?
if [ "$STATUS" -eq $((128 + 9)) ]; then
    tap_ok "the holder dies of SIGKILL"
else
    tap_not_ok "the holder dies of SIGKILL"
    diag "wait status $STATUS"
fi
expect_no_lease "once the holder is dead its lease is released" "name=$IMG "
vml_guest_start vm2 "$U2" --disk "$IMG"
tap_done
