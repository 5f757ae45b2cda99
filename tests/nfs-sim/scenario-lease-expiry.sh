# scenario-lease-expiry.sh: NFSv4 leases: a host that stops renewing loses its locks after the lease, and then sees EIO.
. "$(dirname "$0")/nfssim-lib.sh"
nfssim_init
start_server --mode nfs4 --lease 1
start_mount hostA
start_mount hostB
A=$T/mnt-hostA
B=$T/mnt-hostB

start_holder a1 "$A/lease" || bail "hostA cannot lock: $HOLD_FIRST"
expect_rc 1 "hostB is refused while hostA renews its lease" probe try "$B/lease"
mark
# A host that stops renewing: its client (the mount daemon) is frozen.
kill -STOP "${MOUNT_PID[hostA]}"
check "the server expires hostA's lease after 1 s without renewal" wait_ev EXPIRED hostA 10
check "the expiry dropped hostA's lock" bash -c "'$CTL_BIN' '$T/ctl.sock' events | grep -q 'EXPIRED hostA locks=1'"
start_holder b1 "$B/lease"
expect_eq "$HOLD_FIRST" ready "hostB now gets the lock hostA believes it holds"
kill -CONT "${MOUNT_PID[hostA]}"
expect_eq "$(holder a1 write)" EIO "hostA's next write through the lost lock's descriptor fails with EIO"
expect_eq "$(holder a1 read)" EIO "so does a read"
expect_eq "$(holder a1 relock)" EIO "and re-locking through that descriptor"
expect_rc 1 "a new open on hostA sees hostB's lock" probe try "$A/lease"
expect_eq "$(holder b1 write)" ok "hostB writes normally"
check "hostB, which kept renewing, never expired" bash -c "! '$CTL_BIN' '$T/ctl.sock' events | grep -q 'EXPIRED hostB'"

# A forced expiry (control command) has the same effect.
start_holder a2 "$A/lease2" || bail "hostA cannot lock: $HOLD_FIRST"
ctl expire hostA || bail "expire failed"
expect_rc 0 "after 'expire hostA', hostB gets hostA's lock" probe try "$B/lease2"
expect_eq "$(holder a2 write)" EIO "and hostA's holder sees EIO"
stop_holder a2
stop_holder a1
stop_holder b1
done_testing
