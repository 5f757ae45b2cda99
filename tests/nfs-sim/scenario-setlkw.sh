# scenario-setlkw.sh: F_SETLKW waiters on other hosts are queued, answered asynchronously and granted in order.
. "$(dirname "$0")/nfssim-lib.sh"
nfssim_init
start_server
start_mount hostA
start_mount hostB
start_mount hostC
A=$T/mnt-hostA
B=$T/mnt-hostB
C=$T/mnt-hostC

start_holder a1 "$A/lease" || bail "hostA cannot lock: $HOLD_FIRST"
mark
spawn_holder b1 "$B/lease" --wait
check "hostB's F_SETLKW is queued on the server" wait_ev WAITING hostB
mark
spawn_holder c1 "$C/lease" --wait
check "hostC's F_SETLKW is queued behind it" wait_ev WAITING hostC
# The FUSE loop of hostB is not blocked by its waiter: other operations still work there.
expect_rc 0 "hostB's mount still answers while its waiter blocks" probe write-verify "$B/other" --size 4096
expect_rc 1 "hostB's non-blocking try is refused meanwhile" probe try "$B/lease"
expect_eq "$(ctl dump | grep -c '^wait ')" 2 "the server lists two waiters"

mark
expect_eq "$(holder a1 unlock)" ok "hostA unlocks"
await_holder b1
expect_eq "$HOLD_FIRST" ready "the first waiter (hostB) is granted"
check "the server logged the grant" wait_ev GRANTED hostB
expect_eq "$(ctl dump | grep -c '^wait host=hostC')" 1 "the second waiter (hostC) still waits"
expect_rc 1 "hostA cannot take it back now" probe try "$A/lease"
stop_holder b1
await_holder c1
expect_eq "$HOLD_FIRST" ready "when hostB's holder exits, hostC is granted"
order=$(ctl events | awk '$3 == "GRANTED" { print $4 }' | tr '\n' ' ')
expect_eq "$order" "hostB hostC " "grants came in arrival order"

# A plain waiting process finishes when the lock is released.
mark
bg w1 "$PROBE" wait "$A/lease"
w1=$BG_LAST
check "hostA's waiter is queued" wait_ev WAITING hostA
stop_holder c1
check "hostA's waiter finished" pidwait "$w1"
wait "$w1"
expect_eq "$?" 0 "hostA's waiter exits 0"
expect_eq "$(cat "$T/w1.out")" granted "hostA's waiter was granted"
stop_holder a1
done_testing
