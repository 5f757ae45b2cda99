# scenario-silent-loss.sh: the server silently drops a host's locks; the loser's next I/O fails with EIO (or, with --no-eio, nothing tells it).
. "$(dirname "$0")/nfssim-lib.sh"
nfssim_init
start_server
start_mount hostA
start_mount hostB
A=$T/mnt-hostA
B=$T/mnt-hostB

start_holder a1 "$A/lease" || bail "hostA cannot lock: $HOLD_FIRST"
expect_eq "$(holder a1 write)" ok "hostA writes while holding its lock"
ctl lose-locks hostA || bail "lose-locks failed"
expect_rc 0 "hostB gets the lock hostA lost without notice" probe try "$B/lease"
expect_eq "$(holder a1 write)" EIO "hostA's next write fails with EIO"
expect_eq "$(holder a1 fsync)" EIO "so does fsync"
expect_rc 0 "a fresh descriptor on hostA works (only the old open state is lost)" \
    probe write-verify "$A/data" --size 8192
stop_holder a1

start_holder a2 "$A/lease2" || bail "hostA cannot lock: $HOLD_FIRST"
ctl lose-locks hostA --no-eio || bail "lose-locks failed"
start_holder b2 "$B/lease2"
expect_eq "$HOLD_FIRST" ready "hostB gets the lock hostA lost"
expect_eq "$(holder a2 write)" ok "with --no-eio, hostA is not told: split brain"
expect_eq "$(holder b2 write)" ok "both hosts write"
stop_holder a2
stop_holder b2
done_testing
