# simhost-lib.sh: simulated hosts (own net+mount+pid+UTS namespaces, own vmlockd, own mount of the shared tier), the storage role (sim server or GlusterFS), a timeline log and a teardown that always runs.
# shellcheck shell=bash
# shellcheck disable=SC2034,SC2153,SC2154  # outputs for the callers; PROBE, SERVER, MOUNT, CTL_BIN, tap_failed: from nfssim-lib.sh
#
# Sourced by run-scenario.sh after nfssim-lib.sh (TAP helpers, binary paths).  A host is a
# bash "agent" running as PID 1 of a new pid namespace (plus mount, UTS and network
# namespaces); it executes the command lines the harness sends it over a FIFO, so every
# process a host runs (its vmlockd, its FUSE client, stand-in QEMUs, plugin hosts) lives in
# that pid namespace and `host_crash` kills all of them at once by killing the agent.
#
# Tiers (the shared storage every host mounts at the SAME path, $SIM_SHARED, in its own
# mount namespace, so disk paths and thus lease names agree across hosts):
#   sim      vml-nfssim-server in the "storage" host, reached over a UNIX socket; each host
#            runs vml-nfssim-mount.  No IP address exists anywhere.
#   gluster  glusterd + one brick in the storage host, whose network namespace is a named
#            netns with a bridge at 10.231.0.254/24; each host is a named netns with a veth
#            to that bridge (10.231.0.N/24) and runs the glusterfs FUSE client.
#
# SAFETY RULE (/work/shared/docs/cross-host-engines.md): simulated addresses exist only
# inside the namespaces created here and are only ever used from inside them (every
# gluster command runs in a host or in the storage agent); the root namespace never gets
# an address in 10.231.0.0/24 and no namespace gets a default route.  Everything is
# registered for teardown before it is created, and the EXIT trap tears it all down, also
# on failure: hosts first (killing a pid namespace's init kills its processes; the mount
# namespace and its mounts go with them), then the storage host, then the named network
# namespaces, then the scratch directory.  Processes are only ever killed by recorded pid.
#
# No sleeps: the harness waits on FIFOs (agent answers, job output, job completion), on
# pidfds (vml-fcntl-probe pidwait), on `vmlockd -d` returning, on sim server events.
# Every wait has a bound.

SIM_TIER=${SIM_TIER:-sim}
SIM_DIR=""                      # the scenario's private scratch directory
SIM_SHARED=""                   # where every host mounts the shared tier (same path everywhere)
SIM_START_US=""                 # scenario start, microseconds since the epoch
SIM_NETNS_PREFIX="vmls$$"       # named network namespaces (gluster tier) are PREFIX-NAME
SIM_SUBNET=10.231.0             # gluster tier only; exists only inside our namespaces
SIM_STORAGE_IP=10.231.0.254
SIM_SIM_MODE=nfs4               # sim tier: server lock semantics
SIM_SIM_LEASE=3                 # sim tier: NFSv4 lease seconds (hosts renew every lease/3)
SIM_SIM_GRACE=5                 # sim tier: grace period after a server reboot
SIM_DAEMON_EXTRA=()             # extra vmlockd.conf lines for every host
SIM_LOCKSPACE=shared            # shared: lease files on the tier; local: per host (self-test)
SIM_GLUSTER_VOL=vmlvol
# gluster tier: the FUSE client's entry/attribute caches.  "off" (timeouts 0, like an NFS
# mount with lookupcache=none,noac and like the sim tier) by default: a lock manager that
# unlinks lease files on release and re-stats the path after locking (vmlockd today, like
# virtlockd) is defeated by a 1 s cached dentry (measured: double grants under contention).
# "default" is GlusterFS's own 1 s caching, the usual deployment.
SIM_GLUSTER_CACHE=off

declare -A HOST_UNSHARE_PID=() HOST_INIT_PID=() HOST_W=() HOST_R=() HOST_STATE=() HOST_INDEX=()
declare -A HOST_NETNS=() HOST_SEQ=() HOST_INIT_START=()
declare -A JOB_OUT_FD=() JOB_DONE_FD=()
declare -a SIM_HOST_ORDER=()    # creation order (teardown is the reverse, storage last)
declare -a SIM_NETNS_CREATED=()
SIM_NEXT_INDEX=1
HOST_RC=0
HOST_OUT=""
HOST_ERR=""

# diag TEXT: TAP diagnostics, every line of TEXT prefixed (nfssim-lib.sh's only does one).
diag() {
    local line
    while IFS= read -r line; do
        echo "# $line"
    done <<<"$*"
}

# ---------------------------------------------------------------- time and the timeline

sim_now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }

# Milliseconds (with 3 decimals: "1234.567") between two microsecond stamps.
sim_ms_between() {
    local d=$(($2 - $1)) sign=""
    [ "$d" -lt 0 ] && { sign=-; d=$((-d)); }
    printf '%s%d.%03d' "$sign" $((d / 1000)) $((d % 1000))
}

# Seconds with 3 decimals since the scenario started (for the timeline).
sim_elapsed() {
    local d=$(($(sim_now_us) - SIM_START_US))
    printf '%d.%03d' $((d / 1000000)) $(((d / 1000) % 1000))
}

# tl WHO MESSAGE...: one timeline line (time of day, time since the start, who, what), also
# shown as a TAP diagnostic as it happens.
tl() {
    local who=$1 line now=$EPOCHREALTIME
    shift
    line=$(printf '%(%H:%M:%S)T.%s %9ss  %-8s %s' "${now%.*}" "${now:(-6):3}" "+$(sim_elapsed)" "$who" "$*")
    echo "$line" >>"$SIM_DIR/timeline.log"
    echo "# $line"
}

# ---------------------------------------------------------------- set-up and teardown

# sim_init: check what the tier needs (a TAP skip naming what is missing, never a pass),
# create the scratch directory and register the teardown.
sim_init() {
    [ "$(id -u)" = 0 ] || skip_all "needs root (namespaces, FUSE mounts)"
    [ -c /dev/fuse ] || skip_all "/dev/fuse is missing"
    command -v unshare >/dev/null || skip_all "unshare (util-linux) is not installed"
    command -v nsenter >/dev/null || skip_all "nsenter (util-linux) is not installed"
    local var
    for var in VMLOCKD VMLOCK_HOST VMLOCKCTL VMLOCK_PLUGIN; do
        if [ -z "${!var:-}" ] || [ ! -e "${!var}" ]; then
            skip_all "$var is not built (${!var:-unset})"
        fi
    done
    [ -x "$NFSSIM_BINDIR/vml-sim-contend" ] || skip_all "vml-sim-contend is not built"
    case $SIM_TIER in
    sim)
        command -v fusermount3 >/dev/null || skip_all "fusermount3 (package fuse3) is not installed"
        [ -x "$MOUNT" ] || skip_all "vml-nfssim-mount is not built (libfuse3-dev was missing at configure time)"
        ;;
    gluster)
        local prog
        for prog in glusterd glusterfs gluster; do
            command -v "$prog" >/dev/null ||
                skip_all "$prog is not installed (apt-get install glusterfs-server glusterfs-client)"
        done
        command -v ip >/dev/null || skip_all "ip (iproute2) is not installed"
        sim_netns_collect
        ;;
    *)
        bail "unknown tier '$SIM_TIER' (expected sim or gluster)"
        ;;
    esac
    unshare --mount --uts --net --pid --fork --kill-child true 2>/dev/null ||
        skip_all "cannot create namespaces here"
    trap sim_teardown EXIT
    trap 'exit 1' INT TERM HUP
    SIM_DIR=$(mktemp -d /tmp/vmlsim.XXXXXX) || bail "cannot create a scratch directory"
    SIM_DIR=$(realpath "$SIM_DIR")
    SIM_SHARED=$SIM_DIR/shared
    mkdir -p "$SIM_SHARED" "$SIM_DIR/h"
    SIM_START_US=$(sim_now_us)
    : >"$SIM_DIR/timeline.log"
    tl harness "scenario scratch directory $SIM_DIR, tier $SIM_TIER, started $(date '+%F %T')"
}

# Named network namespaces left by a harness run that was killed before its teardown could
# run (SIGKILL): PREFIX-NAME whose run's pid is gone and in which no process lives.  Only
# names of this harness's form are considered.
sim_netns_collect() {
    local ns pid
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        [[ "$ns" =~ ^vmls([0-9]+)- ]] || continue
        pid=${BASH_REMATCH[1]}
        [ "$pid" = $$ ] && continue
        kill -0 "$pid" 2>/dev/null && continue
        [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] || continue
        ip netns del "$ns" 2>/dev/null && echo "# removed network namespace $ns left by an earlier run (pid $pid)"
    done
}

# In a child about to exec: close every descriptor the harness keeps open (agent and job
# FIFOs), so only the intended processes hold them.
sim_close_fds() {
    local fd
    for fd in "${HOST_W[@]}" "${HOST_R[@]}" "${JOB_OUT_FD[@]}" "${JOB_DONE_FD[@]}"; do
        eval "exec $fd>&-" 2>/dev/null
    done
}

# The start time (clock ticks after boot, /proc/PID/stat field 22) of PID: with the pid,
# it names one process for good, so a recycled pid is never mistaken for it.
sim_start_time() {
    local stat
    local -a f
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -ra f <<<"${stat##*) }"
    echo "${f[19]}"
}

# Kill a host's whole pid namespace (its init) and wait until every process in it is gone.
sim_kill_host() {
    local name=$1 init=${HOST_INIT_PID[$1]:-} upid=${HOST_UNSHARE_PID[$1]:-}
    if [ -n "$init" ] && [ "$(sim_start_time "$init")" = "${HOST_INIT_START[$name]:-none}" ]; then
        kill -KILL "$init" 2>/dev/null
        # The init's pidfd fires only once the kernel has reaped the whole namespace.
        "$PROBE" pidwait "$init" --timeout 30 >/dev/null 2>&1 ||
            echo "# warning: host $name (init pid $init) did not die within 30 s"
    elif [ -n "$upid" ]; then
        # No init (it never started, or it is gone already): unshare's --kill-child takes
        # along whatever is left.
        signal_child KILL "$upid"
    fi
    # unshare exits once its child is gone; it is our child, so wait (never kill: by now
    # bash may have reaped it and its pid may be someone else's).
    [ -n "$upid" ] && wait "$upid" 2>/dev/null
    [ -n "${HOST_W[$name]:-}" ] && eval "exec ${HOST_W[$name]}>&-" 2>/dev/null
    [ -n "${HOST_R[$name]:-}" ] && eval "exec ${HOST_R[$name]}<&-" 2>/dev/null
    unset "HOST_W[$name]" "HOST_R[$name]" "HOST_INIT_PID[$name]" "HOST_UNSHARE_PID[$name]" "HOST_INIT_START[$name]"
    HOST_STATE[$name]=down
}

sim_teardown() {
    local status=$? i name ns key
    trap - EXIT INT TERM HUP
    for key in "${!JOB_OUT_FD[@]}"; do eval "exec ${JOB_OUT_FD[$key]}>&-" 2>/dev/null; done
    for key in "${!JOB_DONE_FD[@]}"; do eval "exec ${JOB_DONE_FD[$key]}>&-" 2>/dev/null; done
    # Hosts in reverse creation order; the storage host was created first, so it goes last.
    for ((i = ${#SIM_HOST_ORDER[@]} - 1; i >= 0; i--)); do
        name=${SIM_HOST_ORDER[$i]}
        [ "${HOST_STATE[$name]:-}" = up ] && sim_kill_host "$name"
    done
    for ns in "${SIM_NETNS_CREATED[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
    wait 2>/dev/null
    if [ -n "$SIM_DIR" ] && [ -d "$SIM_DIR" ]; then
        sim_keep_logs "$status"
        rm -rf "$SIM_DIR"
    fi
    exit "$status"
}

# On failure (or NFSSIM_KEEP=1) show the tail of every log; with NFSSIM_LOGDIR, keep the
# timeline and the logs there.
sim_keep_logs() {
    local status=$1 f
    if [ -n "${SIM_LOG_KEEP_DIR:-}" ]; then
        mkdir -p "$SIM_LOG_KEEP_DIR"
        cp "$SIM_DIR/timeline.log" "$SIM_LOG_KEEP_DIR/timeline.log" 2>/dev/null
        for f in "$SIM_DIR"/h/*/log/*; do
            [ -f "$f" ] || continue
            cp "$f" "$SIM_LOG_KEEP_DIR/$(basename "$(dirname "$(dirname "$f")")")-$(basename "$f")" 2>/dev/null
        done
    fi
    if [ "$status" != 0 ] || [ "$tap_failed" != 0 ] || [ "${NFSSIM_KEEP:-0}" = 1 ]; then
        for f in "$SIM_DIR"/h/*/log/* "$SIM_DIR"/h/*/jobs/*.err; do
            [ -f "$f" ] || continue
            [ -s "$f" ] || continue
            echo "# ---- ${f#"$SIM_DIR"/}"
            tail -n 25 "$f" | sed 's/^/#   /'
        done
    fi
}

# ---------------------------------------------------------------- the agent

# PID 1 of a host: sets its host name, says "ready", then runs each command line it reads
# ("SEQ COMMAND...") and answers "rc=STATUS seq=SEQ".  Command lines are built by the
# harness with printf %q, so they are safe to eval.  Zombies of exited daemons are reaped
# by bash itself whenever it waits.
# shellcheck disable=SC2016
SIM_AGENT='
hostname "$1" || exit 1
echo ready
while read -r sim_seq sim_cmd; do
    eval "$sim_cmd"
    echo "rc=$? seq=$sim_seq"
done
'

# sim_netns_create NAME: a named network namespace with lo up (gluster tier).
sim_netns_create() {
    local ns=$SIM_NETNS_PREFIX-$1
    SIM_NETNS_CREATED+=("$ns")
    ip netns add "$ns" || bail "ip netns add $ns failed"
    ip -n "$ns" link set lo up || bail "cannot bring up lo in $ns"
    HOST_NETNS[$1]=$ns
}

# sim_netns_link NAME: host NAME's namespace gets eth0 = 10.231.0.INDEX/24, its peer
# enslaved to the storage bridge.  Both ends are created directly inside their namespaces.
sim_netns_link() {
    local name=$1 ns=${HOST_NETNS[$1]} srv=${HOST_NETNS[storage]} idx=${HOST_INDEX[$1]}
    ip -n "$ns" link add eth0 type veth peer name "v$idx" netns "$srv" || bail "veth for $name failed"
    ip -n "$ns" addr add "$SIM_SUBNET.$idx/24" dev eth0 || bail "address for $name failed"
    ip -n "$ns" link set eth0 up || bail "eth0 up in $ns failed"
    ip -n "$srv" link set "v$idx" master br0 || bail "bridge port for $name failed"
    ip -n "$srv" link set "v$idx" up || bail "v$idx up failed"
}

# sim_agent_start NAME: the agent in new namespaces (reusing NAME's named netns on the
# gluster tier, so a rebooted host keeps its address).
sim_agent_start() {
    local name=$1 dir=$SIM_DIR/h/$1 w r line
    local -a launcher
    mkdir -p "$dir/log" "$dir/run" "$dir/jobs"
    rm -f "$dir/agent.in" "$dir/agent.out"
    mkfifo "$dir/agent.in" "$dir/agent.out"
    if [ -n "${HOST_NETNS[$name]:-}" ]; then
        launcher=(nsenter "--net=/run/netns/${HOST_NETNS[$name]}" unshare --mount --propagation private
                  --uts --pid --fork --kill-child --mount-proc)
    else
        launcher=(unshare --mount --propagation private --uts --net --pid --fork --kill-child --mount-proc)
    fi
    local uts=host$name
    [ "$name" = storage ] && uts=storage
    (sim_close_fds; exec "${launcher[@]}" bash -c "$SIM_AGENT" agent "$uts" \
        <"$dir/agent.in" >"$dir/agent.out" 2>>"$dir/log/agent.log") &
    HOST_UNSHARE_PID[$name]=$!
    HOST_STATE[$name]=up
    exec {w}>"$dir/agent.in"
    exec {r}<"$dir/agent.out"
    HOST_W[$name]=$w
    HOST_R[$name]=$r
    HOST_SEQ[$name]=0
    read -r -t 30 -u "$r" line
    [ "$line" = ready ] || bail "host $name did not come up: $(tail -n 5 "$dir/log/agent.log")"
    # unshare (nsenter execs it, same pid) forked the namespace's init: its only child.
    HOST_INIT_PID[$name]=$(cat "/proc/${HOST_UNSHARE_PID[$name]}/task/${HOST_UNSHARE_PID[$name]}/children" 2>/dev/null)
    HOST_INIT_PID[$name]=${HOST_INIT_PID[$name]%% *}
    [ -n "${HOST_INIT_PID[$name]}" ] || bail "cannot find the init process of host $name"
    HOST_INIT_START[$name]=$(sim_start_time "${HOST_INIT_PID[$name]}")
}

# host_run [--timeout SECS] NAME CMD...: run CMD inside host NAME and wait for it.  Sets
# HOST_RC, HOST_OUT, HOST_ERR; returns HOST_RC (255: no answer in time, or host down).
host_run() {
    local timeout=60
    if [ "$1" = --timeout ]; then timeout=$2; shift 2; fi
    local name=$1 dir=$SIM_DIR/h/$1 q line seq
    shift
    HOST_RC=255 HOST_OUT="" HOST_ERR=""
    [ "${HOST_STATE[$name]:-}" = up ] || { HOST_ERR="host $name is down"; return 255; }
    seq=$((HOST_SEQ[$name] + 1))
    HOST_SEQ[$name]=$seq
    q=$(printf '%q ' "$@")
    echo "$seq { $q; } </dev/null >$(printf %q "$dir/run.out") 2>$(printf %q "$dir/run.err")" >&"${HOST_W[$name]}" ||
        { HOST_ERR="host $name does not take commands"; return 255; }
    # Answers of earlier commands that timed out are skipped by their sequence number.
    while read -r -t "$timeout" -u "${HOST_R[$name]}" line; do
        if [ "${line##* seq=}" = "$seq" ]; then
            HOST_RC=${line%% seq=*}
            HOST_RC=${HOST_RC#rc=}
            HOST_OUT=$(cat "$dir/run.out" 2>/dev/null)
            HOST_ERR=$(cat "$dir/run.err" 2>/dev/null)
            return "$HOST_RC"
        fi
    done
    HOST_ERR="no answer from host $name within $timeout s"
    return 255
}

# host_spawn NAME JOB CMD...: start CMD in the background inside host NAME.  Its stdout is
# a FIFO the harness reads line by line (host_job_line); its stderr goes to jobs/JOB.err;
# when it exits, "rc=STATUS end=USECS" goes to another FIFO (host_job_wait).
host_spawn() {
    local name=$1 job=$2 jd=$SIM_DIR/h/$1/jobs/$2 q o d
    shift 2
    rm -f "$jd.out" "$jd.done" "$jd.pid" "$jd.pidnum" "$jd.err"
    mkfifo "$jd.out" "$jd.done" "$jd.pid"
    # Read-write opens never block, and keep the FIFOs usable even if the job dies early.
    exec {o}<>"$jd.out"
    exec {d}<>"$jd.done"
    JOB_OUT_FD[$name/$job]=$o
    JOB_DONE_FD[$name/$job]=$d
    q=$(printf '%q ' "$@")
    local qjd
    qjd=$(printf %q "$jd")
    host_run "$name" bash -c "( $q </dev/null >$qjd.out 2>$qjd.err & echo \$! >$qjd.pid; wait \$!; rc=\$?; echo \"rc=\$rc end=\${EPOCHREALTIME/./}\" >$qjd.done ) >/dev/null 2>&1 & read -r p <$qjd.pid; echo \$p >$qjd.pidnum" ||
        { not_ok "host $name starts job $job"; diag "$HOST_ERR"; return 1; }
    return 0
}

# host_job_pid NAME JOB: the job's pid inside its host.
host_job_pid() { cat "$SIM_DIR/h/$1/jobs/$2.pidnum" 2>/dev/null; }

# host_job_line NAME JOB [TIMEOUT]: the next stdout line of the job in JOB_LINE.
host_job_line() {
    JOB_LINE=""
    read -r -t "${3:-30}" -u "${JOB_OUT_FD[$1/$2]}" JOB_LINE
}

# host_job_wait NAME JOB [TIMEOUT]: wait for the job to end; JOB_RC and JOB_END_US.
# Returns 0 when it ended, 1 when it is still running after TIMEOUT (or died with its host).
host_job_wait() {
    local line
    JOB_RC="" JOB_END_US=""
    read -r -t "${3:-60}" -u "${JOB_DONE_FD[$1/$2]}" line || return 1
    JOB_RC=${line%% *}
    JOB_RC=${JOB_RC#rc=}
    JOB_END_US=${line##*end=}
    return 0
}

# ---------------------------------------------------------------- storage

storage_up() {
    case $SIM_TIER in
    sim) storage_up_sim ;;
    gluster) storage_up_gluster ;;
    esac
}

storage_up_sim() {
    local t0
    t0=$(sim_now_us)
    SIM_HOST_ORDER+=(storage)
    sim_agent_start storage
    host_spawn storage server "$SERVER" "$SIM_DIR/srv.sock" "$SIM_DIR/ctl.sock" --ready-fd 1 \
        --mode "$SIM_SIM_MODE" --lease "$SIM_SIM_LEASE" --grace "$SIM_SIM_GRACE" || bail "cannot start the sim server"
    host_job_line storage server 30
    [ "$JOB_LINE" = ready ] || bail "the sim server did not start: $(tail -n 5 "$SIM_DIR/h/storage/jobs/server.err")"
    tl storage "sim NFS server up ($SIM_SIM_MODE, lease ${SIM_SIM_LEASE}s, grace ${SIM_SIM_GRACE}s) in $(sim_ms_between "$t0" "$(sim_now_us)") ms"
}

# The storage control socket of the sim tier (vml-nfssim-ctl).
sim_ctl() { "$CTL_BIN" "$SIM_DIR/ctl.sock" "$@"; }

SIM_GL=""       # the gluster state directory (inside the scratch directory)

# gluster CLI inside the storage host, over glusterd's own UNIX socket (the TCP CLI is read-only).
gluster_cli() {
    host_run --timeout 120 storage gluster --mode=script "--glusterd-sock=$SIM_GL/run/glusterd.socket" "$@"
}

storage_up_gluster() {
    local t0 dir
    t0=$(sim_now_us)
    SIM_GL=$SIM_DIR/gl
    dir=$SIM_DIR/h/storage
    mkdir -p "$SIM_GL/run" "$SIM_GL/wd" "$SIM_GL/brick" "$dir/varlib" "$dir/log"
    SIM_HOST_ORDER+=(storage)
    HOST_INDEX[storage]=254
    sim_netns_create storage
    ip -n "${HOST_NETNS[storage]}" link add br0 type bridge || bail "bridge in the storage namespace failed"
    ip -n "${HOST_NETNS[storage]}" addr add "$SIM_STORAGE_IP/24" dev br0 || bail "storage address failed"
    ip -n "${HOST_NETNS[storage]}" link set br0 up || bail "br0 up failed"
    sim_agent_start storage
    # glusterd hard-codes /var/lib/glusterd, /var/log/glusterfs and /var/run/gluster for some
    # files: inside the storage host's mount namespace they are private directories.
    host_run storage mount --bind "$dir/varlib" /var/lib/glusterd || bail "bind /var/lib/glusterd: $HOST_ERR"
    host_run storage mount --bind "$dir/log" /var/log/glusterfs || bail "bind /var/log/glusterfs: $HOST_ERR"
    host_run storage mount -t tmpfs -o mode=0755 vmlsim-run /run || bail "tmpfs on /run: $HOST_ERR"
    host_run storage mkdir -p /run/gluster || bail "mkdir /run/gluster: $HOST_ERR"
    cat >"$SIM_GL/glusterd.vol" <<EOF
volume management
    type mgmt/glusterd
    option working-directory $SIM_GL/wd
    option run-directory $SIM_GL/run
    option glusterd-sockfile $SIM_GL/run/glusterd.socket
    option transport-type socket
    option transport.socket.listen-port 24007
    option transport.socket.bind-address $SIM_STORAGE_IP
    option ping-timeout 0
    option event-threads 1
end-volume
EOF
    host_run storage glusterd -f "$SIM_GL/glusterd.vol" -p "$SIM_GL/glusterd.pid" -l "$dir/log/glusterd.log" ||
        bail "glusterd did not start: $HOST_ERR"
    gluster_cli volume create "$SIM_GLUSTER_VOL" "$SIM_STORAGE_IP:$SIM_GL/brick" force ||
        bail "gluster volume create failed: $HOST_OUT $HOST_ERR"
    # Locks must fail loudly once lost (EBADFD), and the storage must not cache or reorder
    # what the O_DIRECT oracle writes and reads.
    local opt
    for opt in client.strict-locks=on performance.strict-o-direct=on performance.write-behind=off \
               performance.read-ahead=off performance.io-cache=off performance.quick-read=off \
               performance.open-behind=off performance.stat-prefetch=off; do
        gluster_cli volume set "$SIM_GLUSTER_VOL" "${opt%%=*}" "${opt#*=}" ||
            bail "gluster volume set $opt failed: $HOST_OUT $HOST_ERR"
    done
    gluster_cli volume start "$SIM_GLUSTER_VOL" || bail "gluster volume start failed: $HOST_OUT $HOST_ERR"
    tl storage "glusterd + 1 brick up at $SIM_STORAGE_IP (inside the namespaces only) in $(sim_ms_between "$t0" "$(sim_now_us)") ms"
}

# gluster_brick_pid: the brick's pid inside the storage host (from glusterd's pid file).
gluster_brick_pid() {
    local f
    for f in "$SIM_GL"/run/vols/"$SIM_GLUSTER_VOL"/*.pid; do
        [ -s "$f" ] && { cat "$f"; return 0; }
    done
    return 1
}

# gluster_brick_online: `volume status` (XML: the table wraps long brick paths) shows the
# brick online.
gluster_brick_online() {
    gluster_cli --xml volume status "$SIM_GLUSTER_VOL" >/dev/null 2>&1 || return 1
    grep -q "<status>1</status>" <<<"$HOST_OUT"
}

# gluster_clients_connected: how many clients the brick serves (0 while none reconnected).
gluster_clients_connected() {
    gluster_cli --xml volume status "$SIM_GLUSTER_VOL" clients >/dev/null 2>&1 || { echo 0; return; }
    local n
    n=$(grep -o '<clientCount>[0-9]*' <<<"$HOST_OUT" | head -n 1)
    n=${n#<clientCount>}
    echo "${n:-0}"
}

# ---------------------------------------------------------------- hosts

# The host's vmlockd and plugin configuration files.
sim_write_configs() {
    local name=$1 dir=$SIM_DIR/h/$1 line
    {
        echo "# vmlockd of simulated host $name (written by simhost-lib.sh)"
        echo "unix_sock_path = \"$dir/run/vmlockd-sock\""
        echo "admin_unix_sock_path = \"$dir/run/vmlockd-admin-sock\""
        echo "log_level = 2"
        echo "log_outputs = \"2:file:$dir/log/vmlockd.log\""
        for line in "${SIM_DAEMON_EXTRA[@]}"; do
            echo "$line"
        done
    } >"$dir/vmlockd.conf"
    local lockspace=$SIM_SHARED/lockspace
    [ "$SIM_LOCKSPACE" = local ] && lockspace=$dir/lockspace
    {
        echo "# vmlockd.so of simulated host $name: leases in the $SIM_LOCKSPACE indirect lockspace"
        echo "unix_sock_path = \"$dir/run/vmlockd-sock\""
        echo "file_lockspace_dir = \"$lockspace\""
    } >"$dir/plugin.conf"
}

# host_up NAME [--bare]: create (or reboot) host NAME: namespaces, the shared tier mounted
# at $SIM_SHARED, its vmlockd.  --bare: namespaces only (no mount, no daemon).
host_up() {
    local name=$1 bare=${2:-} dir=$SIM_DIR/h/$1 t0
    t0=$(sim_now_us)
    if [ -z "${HOST_INDEX[$name]:-}" ]; then
        HOST_INDEX[$name]=$SIM_NEXT_INDEX
        SIM_NEXT_INDEX=$((SIM_NEXT_INDEX + 1))
        SIM_HOST_ORDER+=("$name")
        if [ "$SIM_TIER" = gluster ] && [ "$bare" != --bare ]; then
            sim_netns_create "$name"
            sim_netns_link "$name"
        fi
    fi
    [ "${HOST_STATE[$name]:-}" = up ] && bail "host $name is already up"
    sim_agent_start "$name"
    if [ "$bare" = --bare ]; then
        tl "$name" "up (namespaces only) in $(sim_ms_between "$t0" "$(sim_now_us)") ms"
        return 0
    fi
    case $SIM_TIER in
    sim)
        host_spawn "$name" mount "$MOUNT" "host$name" "$SIM_DIR/srv.sock" "$SIM_SHARED" \
            --ready-fd 1 --log-level 2 || bail "cannot start host $name's mount"
        host_job_line "$name" mount 30
        [ "$JOB_LINE" = ready ] ||
            bail "host $name's sim mount did not come up: $(tail -n 5 "$dir/jobs/mount.err")"
        ;;
    gluster)
        local -a cache=(--entry-timeout=0 --attribute-timeout=0 --negative-timeout=0)
        [ "$SIM_GLUSTER_CACHE" = default ] && cache=()
        host_run "$name" glusterfs --process-name fuse "${cache[@]}" "--volfile-server=$SIM_STORAGE_IP" \
            "--volfile-id=$SIM_GLUSTER_VOL" "--log-file=$dir/log/glusterfs-client.log" "$SIM_SHARED" ||
            bail "host $name's glusterfs client failed: $HOST_ERR"
        # The first access waits for the client's connection to the brick.
        host_run "$name" stat -c %i "$SIM_SHARED"
        [ "$HOST_OUT" = 1 ] || bail "host $name: $SIM_SHARED is not the gluster volume root: $HOST_OUT $HOST_ERR"
        ;;
    esac
    host_run "$name" mkdir -p "$SIM_SHARED/disks" || bail "host $name cannot write the shared tier: $HOST_ERR"
    sim_write_configs "$name"
    host_run "$name" "$VMLOCKD" -d -f "$dir/vmlockd.conf" -p "$dir/run/vmlockd.pid" ||
        bail "host $name's vmlockd did not start: $HOST_OUT $HOST_ERR $(tail -n 5 "$dir/log/vmlockd.log" 2>/dev/null)"
    tl "$name" "up: namespaces, $SIM_TIER mount at $SIM_SHARED, vmlockd pid $(host_daemon_pid "$name") ($(sim_ms_between "$t0" "$(sim_now_us)") ms)"
}

# host_crash NAME: kill every process of the host at once (SIGKILL of its pid namespace).
host_crash() {
    local t0
    t0=$(sim_now_us)
    sim_kill_host "$1"
    tl "$1" "CRASHED: every process of the host killed at once (gone after $(sim_ms_between "$t0" "$(sim_now_us)") ms)"
}

# host_down NAME: orderly end of a host (its processes, mounts and namespaces go).
host_down() {
    sim_kill_host "$1"
    tl "$1" "down"
}

# host_daemon_pid NAME: the pid of the host's vmlockd inside the host.
host_daemon_pid() { cat "$SIM_DIR/h/$1/run/vmlockd.pid" 2>/dev/null; }

# host_vmlock NAME ARGS...: vmlock-host with the plugin and the host's plugin config.
host_vmlock() {
    local name=$1
    shift
    host_run "$name" "$VMLOCK_HOST" --plugin "$VMLOCK_PLUGIN" --config "$SIM_DIR/h/$name/plugin.conf" "$@"
}

# host_leases NAME: the host daemon's leases, one line each (see tests/lib/vml_leases.py).
host_leases() {
    "$VMLOCKCTL" --socket "$SIM_DIR/h/$1/run/vmlockd-admin-sock" --json list 2>&1 |
        "${VML_PYTHON:-python3}" "$VML_LIB_DIR/vml_leases.py"
}

# The path of a disk image on the shared tier, and of its lease file (indirect lockspace:
# the SHA-256 of the canonical disk path, which every host shares because every host mounts
# the tier at the same path).
sim_disk_path() { echo "$SIM_SHARED/disks/$1.img"; }
sim_lease_path() {
    local hash
    hash=$(printf %s "$(sim_disk_path "$1")" | sha256sum | cut -d' ' -f1)
    echo "$SIM_SHARED/lockspace/$hash"
}

# ---------------------------------------------------------------- features of vmlockd

# Features that arrive with the lifetime issue are detected, never assumed; a scenario that
# needs a missing one is a TAP skip naming it.  SIM_FEATURE_WHY says what was found.

# Re-exec on SIGUSR1: the new image is handed the old one's state with --handover-fd N (the
# lifetime design), so a vmlockd that knows that option re-executes; one that does not
# (the core only logs "re-exec not implemented" on SIGUSR1) is a skip.
sim_feature_reexec() {
    local out
    out=$("$VMLOCKD" --handover-fd 2>&1 </dev/null)
    if [[ "$out" != *"unknown option"* ]]; then
        SIM_FEATURE_WHY="vmlockd knows --handover-fd (SIGUSR1 re-exec)"
        return 0
    fi
    SIM_FEATURE_WHY="vmlockd has no SIGUSR1 re-exec yet (no --handover-fd option; lifetime issue)"
    return 1
}

# Lost-lock detection: the config key lease_check_interval_ms is accepted.
sim_feature_loss_detection() {
    local conf=$SIM_DIR/feature-check.conf out
    printf 'lease_check_interval_ms = 500\n' >"$conf"
    if out=$("$VMLOCKD" --test-config -f "$conf" 2>&1); then
        SIM_FEATURE_WHY="vmlockd accepts lease_check_interval_ms"
        return 0
    fi
    SIM_FEATURE_WHY="vmlockd has no lost-lock detection yet (its config rejects lease_check_interval_ms; lifetime issue)"
    return 1
}

# A throwaway host for behavioural probes: its vmlockd, a local lockspace, one disk image,
# one guest holding it (SIM_PROBE_GUEST); SIM_PROBE_LEASE is the disk's lease file.
sim_probe_host_up() {
    local probe=featureprobe dir=$SIM_DIR/h/featureprobe
    host_up "$probe" --bare
    rm -rf "$dir/ls"
    mkdir -p "$dir/ls"
    printf 'unix_sock_path = "%s"\nadmin_unix_sock_path = "%s"\nlog_outputs = "2:file:%s"\n' \
        "$dir/run/vmlockd-sock" "$dir/run/vmlockd-admin-sock" "$dir/log/vmlockd.log" >"$dir/vmlockd.conf"
    printf 'unix_sock_path = "%s"\nfile_lockspace_dir = "%s"\n' "$dir/run/vmlockd-sock" "$dir/ls" >"$dir/plugin.conf"
    truncate -s 64K "$dir/disk.img"
    SIM_PROBE_LEASE=$dir/ls/$(printf %s "$dir/disk.img" | sha256sum | cut -d' ' -f1)
    host_run "$probe" "$VMLOCKD" -d -f "$dir/vmlockd.conf" -p "$dir/run/vmlockd.pid" &&
        host_vmlock "$probe" start --name probe --disk "$dir/disk.img" &&
        [[ "$HOST_OUT" =~ started\ [^\ ]+\ pid\ ([0-9]+) ]] && SIM_PROBE_GUEST=${BASH_REMATCH[1]}
}

# Survival of kill -9 (keeper process): the probe host's daemon is killed with SIGKILL while
# it holds a lease, then another process tries the lease file's lock.
sim_feature_keeper() {
    local pid rc=2
    if sim_probe_host_up; then
        pid=$(host_daemon_pid featureprobe)
        host_run featureprobe kill -KILL "$pid"
        host_run featureprobe "$PROBE" pidwait "$pid" --timeout 10
        host_run featureprobe "$PROBE" try "$SIM_PROBE_LEASE" --ofd
        rc=$HOST_RC
    fi
    host_down featureprobe
    if [ "$rc" = 1 ]; then
        SIM_FEATURE_WHY="a lease survives kill -9 of vmlockd"
        return 0
    fi
    SIM_FEATURE_WHY="vmlockd's leases do not survive kill -9 yet (no keeper; lifetime issue)"
    return 1
}

# Lease files kept on release (the lifetime design: owner records and generations live in
# them): the probe host's guest dies; once its lease is free, is the file still there?
sim_feature_kept_lease_files() {
    local kept=""
    if sim_probe_host_up && [ -n "${SIM_PROBE_GUEST:-}" ]; then
        host_run featureprobe kill -KILL "$SIM_PROBE_GUEST"
        host_run featureprobe "$PROBE" pidwait "$SIM_PROBE_GUEST" --timeout 10
        # vmlockd handles an owner's death before the first request of a client that
        # connects afterwards (ARCHITECTURE.md, daemon invariant 2): once this list is
        # answered, the lease is released (and its file removed, if vmlockd does that).
        if [ "$HOST_RC" = 0 ] && host_leases featureprobe >/dev/null; then
            if [ -e "$SIM_PROBE_LEASE" ]; then kept=yes; else kept=no; fi
        fi
    fi
    host_down featureprobe
    if [ "$kept" = yes ]; then
        SIM_FEATURE_WHY="vmlockd keeps lease files on release"
        return 0
    fi
    if [ "$kept" = no ]; then
        SIM_FEATURE_WHY="vmlockd unlinks lease files on release (the lifetime issue keeps them)"
    else
        SIM_FEATURE_WHY="the lease-file probe failed: $HOST_OUT $HOST_ERR"
    fi
    return 1
}
