# scenario-exclusion.sh: locks taken through one host's mount exclude the other hosts (POSIX and OFD, write/read combinations).
. "$(dirname "$0")/nfssim-lib.sh"
nfssim_init
start_server
start_mount hostA
start_mount hostB
A=$T/mnt-hostA
B=$T/mnt-hostB

# The exported tree is shared: what A writes, B reads.
expect_rc 0 "a file written on hostA verifies" probe write-verify "$A/data" --size 300000
check "hostB reads the same bytes" cmp -s "$A/data" "$B/data"

start_holder a1 "$A/lease" || bail "hostA cannot take the first lock: $HOLD_FIRST"
ok "hostA takes a POSIX write lock on byte 0"
expect_rc 1 "hostB: POSIX write lock refused (EAGAIN)" probe try "$B/lease"
expect_rc 1 "hostB: POSIX read lock refused" probe try "$B/lease" --shared
expect_rc 1 "hostB: OFD write lock refused" probe try "$B/lease" --ofd
expect_rc 1 "hostA, another process: refused too" probe try "$A/lease"
out=$(probe getlk "$B/lease")
expect_eq "$out" "locked type=W pid=0 start=0 len=1" "GETLK on hostB shows the lock with pid 0 (another host)"
out=$(probe getlk "$A/lease")
expect_eq "$out" "locked type=W pid=${HOLD_PID[a1]} start=0 len=1" "GETLK on hostA shows the holder's pid"
stop_holder a1
expect_rc 0 "once hostA's holder exits, hostB gets the lock" probe try "$B/lease"

# Readers share across hosts; a writer is refused while they hold.
start_holder r1 "$A/shared" --shared || bail "hostA read lock: $HOLD_FIRST"
start_holder r2 "$B/shared" --shared
expect_eq "$HOLD_FIRST" ready "hostB shares the read lock hostA holds"
expect_rc 1 "a write lock from hostB is refused while both read" probe try "$B/shared"
expect_rc 1 "a write lock from hostA is refused too" probe try "$A/shared" --ofd
stop_holder r2
expect_rc 1 "with one reader left, writers are still refused" probe try "$B/shared"
stop_holder r1
expect_rc 0 "with no reader left, a writer gets it" probe try "$B/shared"

# OFD locks exclude across hosts, and against POSIX locks.
start_holder o1 "$A/ofd" --ofd || bail "hostA OFD lock: $HOLD_FIRST"
expect_rc 1 "hostB: OFD lock refused by hostA's OFD lock" probe try "$B/ofd" --ofd
expect_rc 1 "hostB: POSIX lock refused by hostA's OFD lock" probe try "$B/ofd"
expect_rc 1 "hostA, another open file description: OFD refused" probe try "$A/ofd" --ofd
expect_eq "$(holder o1 unlock)" ok "hostA's OFD unlock"
expect_rc 0 "hostB gets it after the OFD unlock" probe try "$B/ofd" --ofd
stop_holder o1

# The lock table shows what is held.
start_holder d1 "$B/dumped" || bail "hostB lock: $HOLD_FIRST"
check "dump lists hostB's lock with its range and type" \
    bash -c "'$CTL_BIN' '$T/ctl.sock' dump | grep -q 'lock host=hostB .*path=/dumped range=0-0 type=W'"
stop_holder d1
done_testing
