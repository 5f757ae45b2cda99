# scenario-enolck.sh: injected ENOLCK fails the next N lock requests (not unlocks), then locking works again.
. "$(dirname "$0")/nfssim-lib.sh"
nfssim_init
start_server
start_mount hostA
start_mount hostB
A=$T/mnt-hostA

ctl enolck 2 || bail "enolck failed"
out=$(probe try "$A/lease")
expect_eq "$out" ENOLCK "the first lock request fails with ENOLCK"
expect_rc 2 "the second too (exit 2: an error other than EAGAIN)" probe try "$A/lease" --ofd
expect_rc 0 "the third is granted" probe try "$A/lease"
start_holder a1 "$A/lease" || bail "hostA cannot lock: $HOLD_FIRST"
ctl enolck 1 || bail "enolck failed"
expect_eq "$(holder a1 unlock)" ok "an unlock is never failed by the injection"
expect_eq "$(holder a1 relock)" ENOLCK "the pending injection hits the next lock"
expect_eq "$(holder a1 relock)" ok "then locking works again"
stop_holder a1
expect_rc 1 "bad control arguments are refused" "$CTL_BIN" "$T/ctl.sock" enolck -3
done_testing
