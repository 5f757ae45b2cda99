# scenario-close-quirk.sh: closing any descriptor of a file drops the process's POSIX locks on it, cluster-wide (FLUSH).
. "$(dirname "$0")/nfssim-lib.sh"
nfssim_init
start_server
start_mount hostA
start_mount hostB
A=$T/mnt-hostA
B=$T/mnt-hostB

start_holder a1 "$A/lease" || bail "hostA cannot lock: $HOLD_FIRST"
expect_rc 1 "hostB is refused while hostA holds" probe try "$B/lease"
expect_eq "$(holder a1 close-other)" ok "hostA's holder opens and closes a second descriptor"
expect_rc 0 "the POSIX close quirk: hostA's lock is gone for hostB too" probe try "$B/lease"
check "the server logged the flush that dropped it" bash -c "'$CTL_BIN' '$T/ctl.sock' events | grep -q 'FLUSHED hostA'"
expect_eq "$(holder a1 relock)" ok "hostA can lock again through its first descriptor"
expect_rc 1 "and hostB is refused again" probe try "$B/lease"
stop_holder a1

# The quirk is per process: another process's close on the same host changes nothing.
start_holder a2 "$A/lease2" || bail "hostA cannot lock: $HOLD_FIRST"
expect_rc 0 "another process on hostA opens and closes the file" bash -c "exec 3<'$A/lease2'; exec 3<&-"
expect_rc 1 "hostA's lock survives another process's close" probe try "$B/lease2"
stop_holder a2
done_testing
