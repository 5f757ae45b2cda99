# scenario-partition.sh: partitions: a cut-off holder loses its lease and its locks; one-way, soft timeouts, lost replies.
. "$(dirname "$0")/nfssim-lib.sh"
nfssim_init
start_server --lease 1
start_mount hostA
start_mount hostB
A=$T/mnt-hostA
B=$T/mnt-hostB

# Two-way partition of a live holder: it cannot renew, the server hands its lock over.
start_holder a1 "$A/lease" || bail "hostA cannot lock: $HOLD_FIRST"
mark
ctl partition hostA || bail "partition failed"
check "hostA's lease expires while it is cut off" wait_ev EXPIRED hostA 10
start_holder b1 "$B/lease"
expect_eq "$HOLD_FIRST" ready "hostB gets the lock hostA still believes it holds"
mark
bg aw "$PROBE" try "$A/other"
aw=$BG_LAST
check "hostA's new request is held by the partition (hard mount)" wait_ev HELD hostA
expect_rc 3 "and not answered" pidwait "$aw" 1
ctl heal hostA || bail "heal failed"
check "after the heal, the held request completes" pidwait "$aw"
wait "$aw"
expect_eq "$?" 0 "and succeeds (hostA/other was free)"
expect_eq "$(holder a1 write)" EIO "hostA's descriptor of the lost lock gets EIO after the heal"
stop_holder b1
stop_holder a1

# One-way with a soft timeout: hostA's requests are dropped and time out with EIO.
mark
ctl partition hostA --oneway --timeo 200 || bail "partition failed"
out=$(probe try "$A/soft")
expect_eq "$out" EIO "a request from a one-way partitioned host times out with EIO (soft mount)"
check "the server logged the timeout" wait_ev TIMEDOUT hostA
ctl heal hostA || bail "heal failed"
expect_rc 0 "after the heal hostA locks normally" probe try "$A/soft"

# Replies lost: the server executes hostB's lock but hostB never hears of it (an orphan lock).
start_holder o1 "$B/orphan" || bail "hostB cannot lock: $HOLD_FIRST"
expect_eq "$(holder o1 unlock)" ok "hostB opened the file and unlocked it"
ctl partition hostB --replies --timeo 200 || bail "partition failed"
expect_eq "$(holder o1 relock)" EIO "with replies cut, hostB's lock call times out with EIO"
expect_rc 1 "yet the server granted it: hostA is refused" probe try "$A/orphan"
check "the lock table shows hostB's orphan lock" bash -c "'$CTL_BIN' '$T/ctl.sock' dump | grep -q 'lock host=hostB .*path=/orphan'"
ctl heal hostB || bail "heal failed"
expect_eq "$(holder o1 unlock)" ok "hostB unlocks what it never knew it had"
expect_rc 0 "then hostA gets it" probe try "$A/orphan"
stop_holder o1
done_testing
