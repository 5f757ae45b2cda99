#!/bin/bash
# vmlockctl_admin.sh: vmlockctl who, break, check-leases and shutdown against two daemons (two "hosts") sharing a lockspace: holders named, --dead-host enforced, a live lock never broken, shutdown refused while leases are held.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=lt-lib.sh
. "$(dirname "$0")/lt-lib.sh"
lt_require
lt_setup

U1=4c000000-0000-4000-8000-000000000301
U2=4c000000-0000-4000-8000-000000000302
LS=$VML_TMP/shared-lockspace
IMG=$VML_TMP/disk.img
IMG2=$VML_TMP/disk2.img
vml_image "$IMG"
vml_image "$IMG2"
HASH=$(vml_lease_name "$IMG")
HOST=$(hostname)

# ctl SOCKET ARGS...: run vmlockctl against one daemon's admin socket.
ctl() {
    local sock=$1
    shift
    vml_run "$VMLOCKCTL" --socket "$sock" "$@"
}
# json EXPR: evaluate a Python expression over the last output parsed as JSON (j).
json() {
    "$VML_PYTHON" -c 'import json,sys; j=json.loads(sys.stdin.read()); print(eval(sys.argv[1]))' \
        "$1" <<<"$VML_OUT"
}

vml_daemon_config hostA
vml_daemon_start || bail_out "daemon A starts"
A_ADMIN=$VML_ADMIN_SOCK
A_PIDFILE=$VML_DAEMON_PIDFILE
lt_note_keeper "$A_ADMIN"
vml_plugin_config "$VML_TMP/a.conf" "file_lockspace_dir = \"$LS\""
A_CONF=$VML_PLUGIN_CONF
vml_daemon_config hostB
vml_daemon_start || bail_out "daemon B starts"
B_ADMIN=$VML_ADMIN_SOCK
B_PIDFILE=$VML_DAEMON_PIDFILE
lt_note_keeper "$B_ADMIN"
vml_plugin_config "$VML_TMP/b.conf" "file_lockspace_dir = \"$LS\""
B_CONF=$VML_PLUGIN_CONF

VML_PLUGIN_CONF=$A_CONF
vml_guest_start vm1 "$U1" --disk "$IMG" && P1=$VML_GUEST_PID || P1=none
VML_PLUGIN_CONF=$B_CONF
vml_guest_start vm2 "$U2" --disk "$IMG2" && P2=$VML_GUEST_PID || P2=none

# ---- who
ctl "$B_ADMIN" --config "$B_CONF" who "$IMG"
expect_rc 0 "who DISK on daemon B (which does not hold it) answers"
expect_text out "disk $IMG -> lease $LS $HASH" "... naming the lease the plugin computes for the disk"
expect_text out "$LS $HASH: held (owner record), exclusive, generation 1" \
    "... held, from the owner record A wrote, generation 1"
expect_text out "holder: domain 'vm1' uuid $U1 pid $P1 host $HOST since " \
    "... naming vm1's domain, uuid, pid and host"
ctl "$A_ADMIN" --json who --lease "$LS" "$HASH"
expect_rc 0 "who --lease --json on daemon A answers"
tap_check "... valid JSON: source local, state held, holder vm1 with its pid" \
    test "$(json '[j["entries"][0][k] for k in ("source","state","generation")] + [j["entries"][0]["holders"][0][k] for k in ("domain","pid","uuid","host")]')" \
    = "['local', 'held', 1, 'vm1', $P1, '$U1', '$HOST']"
ctl "$A_ADMIN" --config "$A_CONF" who "$VML_TMP/nowhere.img"
expect_rc 0 "who of a disk nobody locked answers"
expect_text out ": not held" "... saying it is not held"
vml_plugin_config "$VML_TMP/nodisks.conf" "auto_disk_leases = 0"
ctl "$A_ADMIN" --config "$VML_TMP/nodisks.conf" who "$IMG"
expect_rc 1 "who DISK with auto_disk_leases = 0 fails"
expect_text err "auto_disk_leases = 0" "... saying the configuration locks no disk"
ctl "$A_ADMIN" --config "$VML_TMP/missing.conf" who "$IMG"
expect_rc 1 "who DISK with a --config that does not exist fails"
expect_text err "cannot read --config $VML_TMP/missing.conf" "... naming it"

# ---- usage errors
ctl "$A_ADMIN" who
expect_rc 2 "who without a disk is a usage error"
ctl "$A_ADMIN" who --lease "$LS"
expect_rc 2 "who --lease with one argument is a usage error"
ctl "$A_ADMIN" list --force
expect_rc 2 "--force outside shutdown is a usage error"
ctl "$A_ADMIN" check-leases extra
expect_rc 2 "check-leases takes no argument"

# ---- break
ctl "$B_ADMIN" break "$LS" "$HASH"
expect_rc 2 "break without --dead-host is refused"
expect_text err "break needs --dead-host HOST" "... saying what is missing"
ctl "$B_ADMIN" break "$LS" "$HASH" --dead-host not-$HOST
expect_rc 2 "break with a --dead-host other than the holder's is refused"
expect_text err "--dead-host is 'not-$HOST' but who names its holder domain 'vm1' on host '$HOST'" \
    "... printing both hosts"
ctl "$B_ADMIN" break "$LS" "$HASH" --dead-host "$HOST"
expect_rc 1 "break on B of the live lock A holds is refused by the daemon"
expect_text err "a live lock is never broken from another daemon" "... saying why"
tap_check "vm1 is untouched by the refused breaks" kill -0 "$P1"

# ---- check-leases
ctl "$A_ADMIN" check-leases
expect_rc 0 "check-leases answers"
expect_text out "checked 1 lease(s): 0 found lost (0 since the daemon started)" \
    "... having verified A's one lease"
ctl "$B_ADMIN" --json check-leases
tap_check "check-leases --json: checked 1, lost 0" \
    test "$(json '(j["checked"], j["lost"], j["lost_total"])')" = "(1, 0, 0)"

# ---- break of a lease this daemon holds: the holder's on_lockfailure (default: kill) first
ctl "$A_ADMIN" break "$LS" "$HASH" --dead-host "$HOST"
expect_rc 0 "break on A of its own lease with the right --dead-host is done"
expect_text out "broke $LS $HASH: this daemon's lease taken from its 1 holder(s)" \
    "... saying what was broken"
tap_check "vm1's QEMU was killed (default on_lockfailure)" vml_wait_exit "$P1" 30
ctl "$A_ADMIN" --json who --lease "$LS" "$HASH"
tap_check "A no longer holds it" test "$(json '[e["source"] for e in j["entries"]]')" != "['local']"

# ---- shutdown
ctl "$B_ADMIN" shutdown
expect_rc 1 "shutdown without --force while vm2 holds a lease is refused"
expect_text err "refusing to stop: 1 lease(s) held by 1 domain(s)" "... printing the daemon's message"
tap_check "... and B still serves" test "$(lt_status leases "$B_ADMIN")" = 1
BPID=$(cat "$B_PIDFILE")
ctl "$B_ADMIN" shutdown --force
expect_rc 0 "shutdown --force is accepted"
expect_text out "1 lease(s) of 1 domain(s) dropped" "... saying what it dropped"
tap_check "daemon B exits" vml_wait_exit "$BPID" 30
tap_check "vm2 keeps running" kill -0 "$P2"
APID=$(cat "$A_PIDFILE")
ctl "$A_ADMIN" --json shutdown
expect_rc 0 "shutdown of A, which holds nothing, needs no --force"
tap_check "... --json: nothing dropped" test "$(json '(j["leases_dropped"], j["owners"])')" = "(0, 0)"
tap_check "daemon A exits" vml_wait_exit "$APID" 30
ctl "$A_ADMIN" check-leases
expect_rc 1 "a command against a stopped daemon fails with exit 1"
tap_done
