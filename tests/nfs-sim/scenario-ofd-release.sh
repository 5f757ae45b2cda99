# scenario-ofd-release.sh: an OFD lock survives closing other descriptors and is dropped on RELEASE of its own.
. "$(dirname "$0")/nfssim-lib.sh"
nfssim_init
start_server
start_mount hostA
start_mount hostB
A=$T/mnt-hostA
B=$T/mnt-hostB

start_holder o1 "$A/lease" --ofd || bail "hostA cannot take an OFD lock: $HOLD_FIRST"
expect_eq "$(holder o1 close-other)" ok "hostA's holder opens and closes a second descriptor"
expect_rc 1 "the OFD lock survives that close (no close quirk for OFD locks)" probe try "$B/lease"
expect_rc 0 "another process on hostA opens and closes the file" bash -c "exec 3<'$A/lease'; exec 3<&-"
expect_rc 1 "the OFD lock survives that too" probe try "$B/lease" --ofd
mark
expect_eq "$(holder o1 close)" ok "hostA closes the locking descriptor"
# RELEASE is sent asynchronously by the kernel after close(2) returns: wait for the server to see it.
check "the server saw the RELEASE" wait_ev RELEASED hostA
expect_rc 0 "the OFD lock went with the open file description" probe try "$B/lease" --ofd
stop_holder o1

# An OFD lock is also freed when its holder is killed.
start_holder o2 "$A/lease2" --ofd || bail "hostA cannot take an OFD lock: $HOLD_FIRST"
mark
kill -KILL "${HOLD_PID[o2]}"
check "the killed holder is gone" pidwait "${HOLD_PID[o2]}"
check "the server saw the RELEASE" wait_ev RELEASED hostA
expect_rc 0 "hostB gets the lock of the killed OFD holder" probe try "$B/lease2"
done_testing
