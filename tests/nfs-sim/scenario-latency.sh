# scenario-latency.sh: injected latency delays one host's requests (in order) without blocking others; interrupts still work.
. "$(dirname "$0")/nfssim-lib.sh"
nfssim_init
start_server
start_mount hostA
start_mount hostB
A=$T/mnt-hostA
B=$T/mnt-hostB

ctl latency hostA 200 || bail "latency failed"
t0=$(date +%s%N)
expect_rc 0 "hostA's lock call succeeds under latency" probe try "$A/lease"
t1=$(date +%s%N)
check "and took at least 200 ms (each of its requests is delayed)" test $(((t1 - t0) / 1000000)) -ge 200
ctl latency hostA 0 || bail "latency failed"

# A request parked by latency holds up nobody else, and can be interrupted.  (No wall-clock
# upper bound on hostB: it would measure the machine's load, not the simulation.)
ctl latency hostA 60000 || bail "latency failed"
bg slow "$PROBE" wait "$A/lease"
slow=$BG_LAST
expect_rc 3 "a request under 60 s latency is not answered in 1 s" pidwait "$slow" 1
expect_rc 0 "meanwhile hostB's lock call completes: it is not slowed down" probe try "$B/lease"
check "while hostA's request still waits out its latency" kill -0 "$slow"
kill -KILL "$slow"
check "but its process can be killed" pidwait "$slow" 10
ctl latency hostA 0 || bail "latency failed"
expect_rc 0 "and hostA works normally afterwards" probe try "$A/lease"
done_testing
