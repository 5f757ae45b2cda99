# scenario-bad-input.sh: bad arguments, control commands and socket messages get clear errors and never disturb the locks.
. "$(dirname "$0")/nfssim-lib.sh"
nfssim_init
start_server
start_mount hostA
start_mount hostB
A=$T/mnt-hostA
B=$T/mnt-hostB
start_holder a1 "$A/lease" || bail "hostA cannot lock: $HOLD_FIRST"

# expect_err DESC PATTERN CMD...: CMD fails and its stderr matches PATTERN.
expect_err() {
    local desc=$1 pattern=$2 out
    shift 2
    if out=$("$@" 2>&1); then
        not_ok "$desc"
        diag "succeeded: $out"
    elif printf '%s' "$out" | grep -q -e "$pattern"; then
        ok "$desc"
    else
        not_ok "$desc"
        diag "error was: $out"
    fi
}

expect_err "unknown control command" "unknown command" ctl frobnicate
expect_err "latency needs a number" "latency 'abc' is not a whole number" ctl latency hostA abc
expect_err "negative ENOLCK count" "count '-1' is not a whole number" ctl enolck -1
expect_err "an unknown host for expire" "no host called 'nosuch'" ctl expire nosuch
expect_err "an invalid host name" "not a valid host name" ctl partition 'bad/name'
expect_err "a grace that is not a number" "not a number of seconds" ctl reboot --grace soon
expect_err "a lease too short to renew" "shorter than 0.3 s" ctl mode nfs4 --lease 0.1
expect_err "--oneway and --replies together" "exclude each other" ctl partition hostA --oneway --replies
expect_err "end-grace without a grace period" "no grace period is active" ctl end-grace
expect_err "the ctl tool refuses arguments with spaces" "contains white space" ctl expire "host A"
expect_err "wait-event times out" "timed out waiting" ctl wait-event NEVER hostA --timeout 0.2
expect_err "a second mount of a connected host is refused" "already connected" \
    "$MOUNT" hostA "$T/srv.sock" "$T/mnt-hostA"
expect_err "the mount refuses a bad host name" "host name 'a/b'" "$MOUNT" a/b "$T/srv.sock" "$T/x"
expect_err "the mount names an unreachable server" "cannot connect to the server" \
    "$MOUNT" hostC "$T/nosuch.sock" "$T/x"
touch "$T/plain"
expect_err "the server refuses to replace a non-socket" "exists and is not a socket" \
    "$SERVER" "$T/plain" "$T/ctl2.sock"
expect_err "the server wants two socket paths" "usage" "$SERVER" "$T/only-one.sock"
expect_err "the server checks --mode" "neither nfs3 nor nfs4" "$SERVER" "$T/s.sock" "$T/c.sock" --mode nfs5
expect_err "the probe checks its mode" "unknown mode" "$PROBE" lock "$A/lease"

# Garbage on the host socket: that connection is dropped, nothing else changes.
if command -v python3 >/dev/null; then
    python3 - "$T/srv.sock" <<'PY'
import socket, sys
for payload in (b"", b"\x01\x00\x00\x00garbage", b"\xff" * 200, b"\x00" * 4096):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    s.send(payload)
    s.settimeout(10)
    try:
        s.recv(1)       # the server closes the connection
    except OSError:
        pass
    s.close()
PY
    check "the server logged why it dropped the bad connections" \
        grep -q "dropping .*connection" "$T/server.log"
else
    ok "# SKIP python3 not available to send malformed messages"
fi
expect_rc 1 "hostA's lock is untouched" probe try "$B/lease"
expect_eq "$(holder a1 write)" ok "hostA's holder still works"
expect_rc 0 "hostB still works" probe write-verify "$B/data" --size 10000
check "the server is still running" kill -0 "$SERVER_PID"
stop_holder a1
done_testing
