# scenario-killed-waiter.sh: a waiter killed in F_SETLKW dies at once (FUSE interrupt -> EINTR) and leaves no lock behind.
. "$(dirname "$0")/nfssim-lib.sh"
nfssim_init
start_server
start_mount hostA
start_mount hostB
A=$T/mnt-hostA
B=$T/mnt-hostB

start_holder a1 "$A/lease" || bail "hostA cannot lock: $HOLD_FIRST"
mark
bg w1 "$PROBE" wait "$B/lease"
w1=$BG_LAST
check "hostB's waiter is queued" wait_ev WAITING hostB
kill -KILL "$w1"
check "the killed waiter is gone (not stuck in D state)" pidwait "$w1" 10
check "the server cancelled the waiting request" wait_ev CANCELLED hostB
expect_eq "$(ctl dump | grep -c '^wait ')" 0 "no waiter is left on the server"
expect_eq "$(holder a1 unlock)" ok "hostA unlocks"
expect_rc 0 "hostB can lock: the dead waiter was never granted" probe try "$B/lease"
expect_rc 0 "and hostA too" probe try "$A/lease"

# A waiter interrupted by a caught signal gets EINTR from fcntl (vml-fcntl-probe wait catches SIGUSR1).
expect_eq "$(holder a1 relock)" ok "hostA locks again"
mark
bg w2 "$PROBE" wait "$B/lease"
w2=$BG_LAST
check "a second waiter is queued" wait_ev WAITING hostB
kill -USR1 "$w2"
check "the signalled waiter returns" pidwait "$w2" 10
wait "$w2"
expect_eq "$?" 2 "its F_SETLKW failed"
expect_eq "$(cat "$T/w2.out")" EINTR "with EINTR"
check "the server cancelled it" wait_ev CANCELLED hostB
expect_rc 1 "hostA still holds its lock" probe try "$B/lease"
stop_holder a1
done_testing
