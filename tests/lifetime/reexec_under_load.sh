#!/bin/bash
# reexec_under_load.sh: SIGUSR1 re-executes the daemon in place while other processes try the held locks all the time: nobody gets one, every lease, owner and connection (even a half-sent call) survives.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=lt-lib.sh
. "$(dirname "$0")/lt-lib.sh"
lt_require
lt_setup

U1=4c000000-0000-4000-8000-000000000101
U2=4c000000-0000-4000-8000-000000000102
U3=4c000000-0000-4000-8000-000000000103
LS=$VML_TMP/ls
IMG1=$VML_TMP/indirect.img
IMG2=$VML_TMP/direct.img
vml_image "$IMG1"
vml_image "$IMG2"
HASH1=$(vml_lease_name "$IMG1")
ROUNDS=5

# No periodic check round may postpone a re-exec here (docs/LIFETIME.md: re-exec waits for
# a quiet moment); CHECK_NOW still runs after.
vml_daemon_config vmlockd "lease_check_interval_ms = 0"
vml_daemon_start || bail_out "vmlockd -d starts"
DPID=$(vml_daemon_pid)
lt_note_keeper
vml_plugin_config "$VML_TMP/indirect.conf" "file_lockspace_dir = \"$LS\""
vml_guest_start vm1 "$U1" --disk "$IMG1" && P1=$VML_GUEST_PID || P1=none
vml_plugin_config "$VML_TMP/direct.conf"
vml_guest_start vm2 "$U2" --disk "$IMG2" && P2=$VML_GUEST_PID || P2=none
BEFORE=$(vml_leases | sort)
CLIENTS_BEFORE=$(lt_status clients)

# The load: one process locking the files directly (another host), one asking the daemon
# for the direct disk as another domain.
lt_hammer_start files file "$LS/$HASH1" "$IMG2" || bail_out "the file hammer starts"
lt_hammer_start asks daemon "$VML_SOCK" "" "$IMG2" || bail_out "the daemon hammer starts"

# A client half-way through sending a call when the re-exec happens.
cat >"$VML_TMP/half.py" <<'PYEOF'
import os, socket, struct, sys, uuid
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
payload = (uuid.UUID("4c000000-0000-4000-8000-000000000199").bytes +
           struct.pack(">I", 4) + b"half" + struct.pack(">III", 9, os.getpid(), 0))
body = struct.pack(">IIiiIi", 0x0EA7BEEF, 1, 1, 0, 7, 0) + payload
msg = struct.pack(">I", len(body) + 4) + body
s.sendall(msg[:10])
print("half", flush=True)
sys.stdin.readline()
s.sendall(msg[10:])
reply = s.recv(100)
print("reply %d status %d" % (len(reply), struct.unpack(">i", reply[24:28])[0]), flush=True)
PYEOF
coproc HALF { exec "$VML_PYTHON" "$VML_TMP/half.py" "$VML_SOCK"; }
VML_CHILD_PIDS+=("$HALF_PID")
read -r -t 30 -u "${HALF[0]}" line
tap_check "a client has sent 10 bytes of a REGISTER call" test "$line" = half

for round in $(seq 1 $ROUNDS); do
    kill -USR1 "$DPID"
    got=$(lt_status reexecs)
    if [ "$got" = "$round" ] && [ "$(lt_status pid)" = "$DPID" ]; then
        tap_ok "SIGUSR1 #$round: the next request is answered by re-exec #$round, same pid $DPID"
    else
        tap_not_ok "SIGUSR1 #$round: re-exec #$round answers (got reexecs=$got)"
        diag "log: $(grep -E 're-exec|HANDOVER' "$VML_DAEMON_LOG" | tail -n 5)"
    fi
    lt_hammer_mark files && lt_hammer_mark asks ||
        tap_not_ok "the hammers made a full round after re-exec #$round"
done

echo go >&"${HALF[1]}"
read -r -t 30 -u "${HALF[0]}" line
tap_check "the half-sent call completes after the re-execs: a 28-byte OK reply" \
    test "$line" = "reply 28 status 0"

lt_hammer_stop files
lt_hammer_never_granted files "no other process could lock a held lease file at any moment"
lt_hammer_stop asks
lt_hammer_never_granted asks "no other domain was granted the held disk at any moment"

AFTER=$(vml_leases | sort)
tap_check "the daemon holds exactly the same leases and holders after $ROUNDS re-execs" \
    test "$BEFORE" = "$AFTER"
tap_check "the guests' holder connections were kept ($CLIENTS_BEFORE before)" \
    test "$(lt_status clients)" -ge 2
tap_check "the keeper is the same process" test "$(lt_status keeper_pid)" = "$LT_KEEPER_PID"
vml_guest_refused vm3 "$U3" --disk "$IMG2" -- "is locked by domain 'vm2'"
VML_PLUGIN_CONF=$VML_TMP/indirect.conf
vml_guest_refused vm3 "$U3" --disk "$IMG1" -- "is locked by domain 'vm1'"

# The owners are still watched by the pidfds that crossed the exec.
tap_check "vm1's QEMU dies" vml_guest_kill "$P1"
expect_no_lease "its lease is released by the re-executed daemon" "pids=,$P1,"
vml_guest_start vm3 "$U3" --disk "$IMG1"
VML_PLUGIN_CONF=$VML_TMP/direct.conf
vml_run "$VMLOCKCTL" --socket "$VML_ADMIN_SOCK" status
expect_rc 0 "vmlockctl (extension version 1) still answers after the re-execs"
tap_done
