# scenario-reboot-grace.sh: server reboot: locks dropped, reclaimed in the grace period; newcomers wait for its end.
. "$(dirname "$0")/nfssim-lib.sh"
nfssim_init
start_server
start_mount hostA
start_mount hostB
A=$T/mnt-hostA
B=$T/mnt-hostB

start_holder a1 "$A/lease" || bail "hostA cannot lock: $HOLD_FIRST"
mark
ctl reboot --grace 60 || bail "reboot failed"
check "hostA reclaims its lock after the reboot" wait_ev RECLAIMED hostA
check "the reclaim took one lock" bash -c "'$CTL_BIN' '$T/ctl.sock' events | grep -q 'RECLAIMED hostA locks=1 refused=0'"
mark
bg nb "$PROBE" try "$B/lease"
nb=$BG_LAST
check "hostB's new lock request waits for the grace period (NFS4ERR_GRACE)" wait_ev GRACE_WAIT hostB
expect_rc 3 "it is still waiting: not answered during grace" pidwait "$nb" 1
ctl end-grace || bail "end-grace failed"
check "after grace, hostB's request is answered" pidwait "$nb"
wait "$nb"
expect_eq "$?" 1 "and refused (EAGAIN): the reclaimer kept the lock"
expect_eq "$(holder a1 write)" ok "the reclaimer's descriptor still works"

# A host that does not reclaim loses its lock, and its descriptor gets EIO.
ctl reclaim hostA off || bail "reclaim off failed"
mark
ctl reboot --grace 60 || bail "reboot failed"
check "hostA gives its locks up" wait_ev RECLAIM_DECLINED hostA
ctl end-grace || bail "end-grace failed"
expect_rc 0 "after grace hostB gets the lock hostA did not reclaim" probe try "$B/lease"
expect_eq "$(holder a1 write)" EIO "hostA's descriptor of the lost lock gets EIO"
stop_holder a1

# Reboot with no grace period: state lost at once (like a server that lost its recovery data).
ctl reclaim hostA on || bail "reclaim on failed"
start_holder a2 "$A/lease2" || bail "hostA cannot lock: $HOLD_FIRST"
mark
ctl reboot --grace 0 || bail "reboot failed"
check "hostA's late reclaim fails" wait_ev RECLAIM_FAILED hostA
expect_rc 0 "hostB gets the lock immediately" probe try "$B/lease2"
expect_eq "$(holder a2 write)" EIO "hostA's descriptor gets EIO"
stop_holder a2

# The ENOLCK flavour of grace: new locks fail instead of waiting.
ctl reboot --grace 60 --enolck || bail "reboot failed"
out=$(probe try "$B/lease3")
expect_eq "$out" ENOLCK "in an --enolck grace period a new lock fails with ENOLCK"
ctl end-grace || bail "end-grace failed"
expect_rc 0 "after grace it succeeds" probe try "$B/lease3"
done_testing
