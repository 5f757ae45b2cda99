# scenario-nfs3-no-expiry.sh: NFSv3/NLM: locks never expire, not even for a dead client, until that host reboots (SM_NOTIFY).
. "$(dirname "$0")/nfssim-lib.sh"
nfssim_init
start_server --mode nfs3 --lease 0.3
start_mount hostA
start_mount hostB
A=$T/mnt-hostA
B=$T/mnt-hostB

start_holder a1 "$A/lease" || bail "hostA cannot lock: $HOLD_FIRST"
kill -STOP "${MOUNT_PID[hostA]}"
# No expiry may happen: the server's own bounded wait for the event must time out.
expect_rc 1 "no EXPIRED event in 2 s (more than six NFSv4 leases of 0.3 s)" \
    "$CTL_BIN" "$T/ctl.sock" wait-event EXPIRED hostA --timeout 2
expect_rc 1 "hostB is still refused: the silent host keeps its lock" probe try "$B/lease"
kill -CONT "${MOUNT_PID[hostA]}"
mark
ctl host-reboot hostA || bail "host-reboot failed"
check "the server processed hostA's SM_NOTIFY" wait_ev HOST_REBOOT hostA
expect_rc 0 "after hostA's reboot notification, hostB gets the lock" probe try "$B/lease"
expect_eq "$(holder a1 write)" EIO "the pre-reboot descriptor of hostA gets EIO"
stop_holder a1

# A client that disappears (its mount killed) keeps its locks in NFSv3.
start_holder a2 "$A/lease2" || bail "hostA cannot lock: $HOLD_FIRST"
mark
kill -KILL "${MOUNT_PID[hostA]}"
check "hostA's mount is gone" pidwait "${MOUNT_PID[hostA]}"
check "the server saw hostA disconnect" wait_ev DISCONNECTED hostA
expect_rc 1 "hostB is still refused after hostA's client died" probe try "$B/lease2"
kill -KILL "${HOLD_PID[a2]}"
umount -l "$A"
unset "MOUNT_PID[hostA]"
mark
start_mount hostA
check "a new mount of hostA is a reboot of hostA: its old locks go" wait_ev HOST_REBOOT hostA
expect_rc 0 "hostB then gets the lock" probe try "$B/lease2"
done_testing
