# scenario-namespaces.sh: two hosts in their own network+mount+pid namespaces, each mounting at the SAME path, share one lock server over a UNIX socket.
. "$(dirname "$0")/nfssim-lib.sh"
nfssim_init
command -v unshare >/dev/null || skip_all "unshare (util-linux) is not installed"
unshare --mount --net --pid --fork --kill-child true 2>/dev/null || skip_all "cannot create namespaces here"
start_server
MNT=$T/mnt      # one path; each host's namespace has its own mount there
mkdir -p "$MNT"
declare -A NS_W=() NS_R=()

# The agent: runs as PID 1 of a new pid namespace, with only "lo" for network (no address,
# no route: nothing can leave the host) and a private mount namespace in which it mounts its
# host's view at $MNT; then runs the commands it reads, answering "rc=N" for each.
AGENT='
host=$1; mount_bin=$2; sock=$3; mnt=$4; ready=$5
"$mount_bin" "$host" "$sock" "$mnt" --ready-fd 3 --log-level 2 3>"$ready" &
read -r line <"$ready"
echo "$line"
while IFS= read -r cmd; do
    eval "$cmd" </dev/null >&2
    echo "rc=$?"
done
'

# start_ns_host HOST: the host's agent in new namespaces; its unshare is killed at cleanup,
# which kills the namespace's PID 1 (--kill-child) and so everything in it, mount included.
start_ns_host() {
    local host=$1 w r line
    mkfifo "$T/ns-$host.in" "$T/ns-$host.out" "$T/ns-$host.ready"
    (close_holder_fds; exec unshare --mount --propagation private --net --pid --fork --kill-child \
        --mount-proc bash -c "$AGENT" agent "$host" "$MOUNT" "$T/srv.sock" "$MNT" "$T/ns-$host.ready" \
        <"$T/ns-$host.in" >"$T/ns-$host.out" 2>"$T/ns-$host.log") &
    NS_PID[$host]=$!
    BG_PIDS+=("$!")
    exec {w}>"$T/ns-$host.in"
    exec {r}<"$T/ns-$host.out"
    NS_W[$host]=$w
    NS_R[$host]=$r
    read -r -t 30 -u "$r" line
    [ "$line" = ready ] || bail "host $host did not come up in its namespaces: $(tail -n 5 "$T/ns-$host.log")"
}

# on HOST CMD: run CMD (a shell command line) inside HOST's namespaces; returns its status.
on() {
    local line
    echo "$2" >&"${NS_W[$1]}"
    read -r -t 30 -u "${NS_R[$1]}" line || return 255
    return "${line#rc=}"
}

declare -A NS_PID=()
start_ns_host hostA
start_ns_host hostB

check "hostA sees its FUSE mount at $MNT" on hostA "mountpoint -q '$MNT'"
check "hostB sees its own FUSE mount at the same path" on hostB "mountpoint -q '$MNT'"
check "the root namespace sees neither" bash -c "! mountpoint -q '$MNT'"
check "hostA is PID 1 of its own pid namespace" on hostA 'test $$ = 1'
check "hostA's network namespace has only lo" on hostA "test \$(tail -n +3 /proc/net/dev | wc -l) = 1 && grep -q '^ *lo:' /proc/net/dev"
check "hostA has no route at all (nothing can leave it; the server is a UNIX socket)" \
    on hostA "! grep -qv '^Iface' /proc/net/route"
check "the two hosts and the root are three mount namespaces" \
    test "$(readlink /proc/${NS_PID[hostA]}/ns/mnt)" != "$(readlink /proc/${NS_PID[hostB]}/ns/mnt)" -a \
    "$(readlink /proc/${NS_PID[hostA]}/ns/mnt)" != "$(readlink /proc/$$/ns/mnt)"
check "and two network namespaces other than the root's" \
    test "$(readlink /proc/${NS_PID[hostA]}/ns/net)" != "$(readlink /proc/${NS_PID[hostB]}/ns/net)" -a \
    "$(readlink /proc/${NS_PID[hostB]}/ns/net)" != "$(readlink /proc/$$/ns/net)"

check "hostA writes a file through its mount" on hostA "'$PROBE' write-verify '$MNT/data' --size 65536"
check "hostB sees it through its own mount" on hostB "test \$(stat -c %s '$MNT/data') = 65536"

# A lock held inside hostA's namespaces excludes hostB.
mkfifo "$T/hold-a1.in" "$T/hold-a1.out"
check "hostA starts a holder" on hostA "'$PROBE' hold '$MNT/lease' <'$T/hold-a1.in' >'$T/hold-a1.out' 2>&1 &"
attach_holder a1
await_holder a1
expect_eq "$HOLD_FIRST" ready "hostA holds the lock on $MNT/lease"
on hostB "'$PROBE' try '$MNT/lease'"
expect_eq "$?" 1 "hostB is refused (EAGAIN)"
on hostB "test \"\$('$PROBE' getlk '$MNT/lease')\" = 'locked type=W pid=0 start=0 len=1'"
expect_eq "$?" 0 "hostB's GETLK reports the remote holder with pid 0"
mark
stop_holder a1
check "hostA's holder exited and its close flushed the lock" wait_ev FLUSHED hostA
on hostB "'$PROBE' try '$MNT/lease'"
expect_eq "$?" 0 "hostB gets the lock"

# A host crash: hostA's whole namespace dies with its lock held.
mkfifo "$T/hold-a2.in" "$T/hold-a2.out"
on hostA "'$PROBE' hold '$MNT/lease2' <'$T/hold-a2.in' >'$T/hold-a2.out' 2>&1 &"
attach_holder a2
await_holder a2 || bail "hostA cannot lock: $HOLD_FIRST"
mark
kill -KILL "${NS_PID[hostA]}"
check "hostA's namespaces are gone" pidwait "${NS_PID[hostA]}"
check "the server saw hostA's client disconnect" wait_ev DISCONNECTED hostA
on hostB "'$PROBE' try '$MNT/lease2'"
expect_eq "$?" 1 "hostB is still refused: the crashed host's lease has not run out"
ctl expire hostA || bail "expire failed"
on hostB "'$PROBE' try '$MNT/lease2'"
expect_eq "$?" 0 "once hostA's lease expires, hostB gets the lock"
stop_holder a2
done_testing
