# scenario-verbs.sh: the scenario language of the multi-host harness: reads a .scn file and runs its verbs on simulated hosts, as TAP.
# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154  # settings read by simhost-lib.sh; TAP state of nfssim-lib.sh
#
# A scenario file is a list of lines "VERB ARGS..." (shell-style quoting), run in order.
# Blank lines and lines starting with '#' are ignored.  A line "@TIER VERB ARGS..." runs only
# on that tier (sim or gluster).  Header verbs (title, tiers, requires, sim-mode, sim-lease,
# sim-grace, daemon-config) take effect before anything starts, wherever they stand.  Every
# verb writes what it did to the timeline; verbs that check something are TAP test points.
# Hosts are named by one word (A, B, ...); their host name inside is "host<NAME>".  Disks are
# named by one word and live on the shared tier as $SIM_SHARED/disks/NAME.img.  Guests are
# named per host (VM names as libvirt's), their stand-in QEMU pid is remembered.
#
# Header:
#   title TEXT...                 one line saying what the scenario shows
#   tiers TIER...                 where it applies (default: sim gluster); elsewhere: SKIP
#   requires FEATURE...           reexec | keeper | loss-detection | kept-lease-files: SKIP
#                                 (naming why) unless this vmlockd has it (simhost-lib.sh)
#   sim-mode nfs3|nfs4  sim-lease SECS  sim-grace SECS      the sim server's semantics
#   daemon-config 'KEY = VALUE'   a line for every host's vmlockd.conf
#   gluster-cache off|default     the gluster clients' entry/attribute caches (default off;
#                                 see simhost-lib.sh for why)
#   lockspace shared|local        where the hosts' lease files live (default shared: on the
#                                 tier; local: each host its own directory, which cannot
#                                 exclude other hosts: only for the oracle's self-test)
# Hosts, disks, guests:
#   hosts NAME...                 bring hosts up (namespaces, tier mount, vmlockd)
#   up NAME                       bring a host up again (after a crash: a reboot)
#   crash NAME                    kill every process of the host at once
#   disk NAME [SIZE]              create a disk image on the shared tier (default 1M)
#   start HOST VM DISK[:shared|:readonly]... [action=A] => ok|busy ['FRAGMENT']
#                                 vmlock-host start (start hook in the forked guest, then
#                                 CPU-start acquire); busy = refused with "resource busy"
#   kill-guest HOST VM            SIGKILL the guest's stand-in QEMU, wait until it is gone
#   pause HOST VM / resume HOST VM => ok|busy / inquire HOST VM     a later libvirtd's calls
#   holds HOST VM DISK            HOST's vmlockd lists VM as a holder of DISK's lease
#   no-lease HOST DISK            HOST's vmlockd holds no lease for DISK
#   guest-alive HOST VM           the guest still runs
#   guest-dies HOST VM within SECS     the guest is gone within SECS (e.g. on_lockfailure)
#   dies-before HOST VM HOST2 DISK|reconnect   the guest was gone before HOST2's watcher got
#                                 DISK (or before the storage clients reconnected)
# Storage-level observation (a POSIX F_SETLKW waiter on the disk's lease file):
#   wait-free HOST DISK [SECS]    block until the lease is free from HOST (default 30 s)
#   watch HOST DISK               start such a waiter in the background
#   granted HOST DISK within SECS [after SECS] [as KEY]
#                                 the watcher got the lock within SECS (and not before
#                                 "after" SECS) of the last fault (crash, reboot, partition,
#                                 server reboot, brick restart) or else of the watch; the
#                                 measured time is recorded as key figure KEY
#   blocked HOST DISK for SECS    the watcher is still blocked SECS later (an assertion of
#                                 absence: the one deliberate bounded wait)
# Daemons:
#   daemon-reexec HOST            SIGUSR1: re-exec in place; waits until it serves again
#   daemon-kill9 HOST             SIGKILL the daemon, start a new one (it must re-adopt)
#   hammer-start HOST DISK        a guest on HOST tries DISK continuously (vml-sim-contend
#                                 --expect-busy); hammer-stop HOST: any grant fails the test
#   contend hosts=N guests=M disks=K rounds=R [verify=V] [expect=double-grants]
#                                 the contention run (see v_contend); expect=double-grants
#                                 is the oracle's self-test (with 'lockspace local')
# Storage faults:
#   sim-ctl ARGS...               a vml-nfssim-ctl command (sim tier); mark: remember the
#                                 event number; event NAME HOST|- [SECS]: wait for an event
#                                 (of hostHOST, or of any host) after the mark
#   server-reboot [SECS]          sim: server reboot with a grace period of SECS
#   brick-restart                 gluster: kill -9 the brick, start it again
#   storage-reconnected           gluster: wait until every host's client is back
#   note TEXT...                  a line in the timeline

declare -A GUEST_PID=() GUEST_DISKS=() GUEST_DEATH_US=()
declare -A WATCH_START_US=() WATCH_GRANT_US=()
SCN_TITLE=""
SCN_TIERS="sim gluster"
declare -a SCN_REQUIRES=()
SCN_LINE=0
SCN_FILE=""
SIM_MARK=0
# The last fault (crash, reboot, partition, server reboot, brick restart): what "granted"
# measures from, when it happened after the watch began.
SIM_REF_US=""
SIM_REF_WHAT=""
scn_ref() { SIM_REF_US=$(sim_now_us); SIM_REF_WHAT=$1; }

# key NAME=VALUE: a key figure of this run (shown in the verdict and the summary table).
key() { echo "# key: $*"; }

skip_point() { tap_count=$((tap_count + 1)); echo "ok $tap_count - $1 # SKIP $2"; }

# ---------------------------------------------------------------- the file

# scn_lines FILE: the lines that apply to this tier, as "LINENO<TAB>TEXT".
scn_lines() {
    local n=0 line tier
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        line=${line#"${line%%[![:space:]]*}"}
        [ -z "$line" ] && continue
        [ "${line:0:1}" = "#" ] && continue
        if [ "${line:0:1}" = "@" ]; then
            tier=${line%%[[:space:]]*}
            tier=${tier#@}
            [ "$tier" = "$SIM_TIER" ] || continue
            line=${line#@"$tier"}
            line=${line#"${line%%[![:space:]]*}"}
        fi
        printf '%s\t%s\n' "$n" "$line"
    done <"$1"
}

# scn_split LINE: its words into the caller's array "args", with quotes ('...', "...")
# honoured and nothing expanded (xargs does the quoting, no shell evaluates the text).
# title and note take the rest of the line as it is.
scn_split() {
    local word=${1%%[[:space:]]*} rest
    if [ "$word" = title ] || [ "$word" = note ]; then
        rest=${1#"$word"}
        args=("$word" "${rest#"${rest%%[![:space:]]*}"}")
        return 0
    fi
    xargs printf '' <<<"$1" >/dev/null 2>&1 || return 1      # unmatched quote: xargs fails
    mapfile -d '' args < <(xargs printf '%s\0' <<<"$1")
    [ "${#args[@]}" -gt 0 ]
}

scn_is_header() {
    case $1 in title|tiers|requires|sim-mode|sim-lease|sim-grace|daemon-config|lockspace|gluster-cache) return 0 ;; esac
    return 1
}

scn_run_file() {
    local file=$1 entry verb fn
    local -a lines args
    [ -f "$file" ] || bail "no scenario file $file"
    SCN_FILE=$(basename "$file")
    mapfile -t lines < <(scn_lines "$file")
    # Header first.
    for entry in "${lines[@]}"; do
        SCN_LINE=${entry%%$'\t'*}
        scn_split "${entry#*$'\t'}" || bail "$file:$SCN_LINE: cannot parse the line (unbalanced quotes?)"
        if ! scn_is_header "${args[0]}"; then
            # Every verb is checked before anything starts.
            declare -F "v_${args[0]//-/_}" >/dev/null || bail "$file:$SCN_LINE: unknown verb '${args[0]}'"
            continue
        fi
        case ${args[0]} in
        title) SCN_TITLE=${args[*]:1} ;;
        tiers) SCN_TIERS=${args[*]:1} ;;
        requires) SCN_REQUIRES+=("${args[@]:1}") ;;
        sim-mode) SIM_SIM_MODE=${args[1]} ;;
        sim-lease) SIM_SIM_LEASE=${args[1]} ;;
        sim-grace) SIM_SIM_GRACE=${args[1]} ;;
        daemon-config) SIM_DAEMON_EXTRA+=("${args[*]:1}") ;;
        gluster-cache)
            case ${args[1]:-} in
            off|default) SIM_GLUSTER_CACHE=${args[1]} ;;
            *) bail "$file:$SCN_LINE: gluster-cache off|default" ;;
            esac
            ;;
        lockspace)
            case ${args[1]:-} in
            shared|local) SIM_LOCKSPACE=${args[1]} ;;
            *) bail "$file:$SCN_LINE: lockspace shared|local" ;;
            esac
            ;;
        esac
    done
    [[ " $SCN_TIERS " == *" $SIM_TIER "* ]] ||
        skip_all "scenario $(basename "$file" .scn) is not meant for the $SIM_TIER tier (tiers: $SCN_TIERS)"
    sim_init
    tl harness "scenario $(basename "$file" .scn): $SCN_TITLE"
    local feature
    for feature in "${SCN_REQUIRES[@]}"; do
        case $feature in
        reexec|keeper|loss-detection|kept-lease-files) ;;
        *) bail "$file: unknown feature '$feature' (reexec, keeper, loss-detection, kept-lease-files)" ;;
        esac
        if ! "sim_feature_${feature//-/_}"; then
            tl harness "requirement $feature not met: $SIM_FEATURE_WHY"
            # For whoever lands the feature: run the scenario anyway to see where it stands.
            [ "${NFSSIM_IGNORE_REQUIRES:-0}" = 1 ] || skip_all "$SIM_FEATURE_WHY"
            continue
        fi
        tl harness "requirement $feature: $SIM_FEATURE_WHY"
    done
    storage_up
    for entry in "${lines[@]}"; do
        SCN_LINE=${entry%%$'\t'*}
        scn_split "${entry#*$'\t'}" || bail "$file:$SCN_LINE: cannot parse the line (unbalanced quotes?)"
        verb=${args[0]}
        scn_is_header "$verb" && continue
        fn=v_${verb//-/_}
        declare -F "$fn" >/dev/null || bail "$file:$SCN_LINE: unknown verb '$verb'"
        "$fn" "${args[@]:1}"
    done
    [ -n "$SCN_GRANT_MS_MAX" ] && key "slowest_granted_start=${SCN_GRANT_MS_MAX}ms"
    [ -n "$SCN_REFUSE_MS_MAX" ] && key "slowest_refused_start=${SCN_REFUSE_MS_MAX}ms"
    tl harness "scenario done: $tap_count checks, $([ "$tap_failed" = 0 ] && echo "all passed" || echo "FAILURES")"
    done_testing
}

# ---------------------------------------------------------------- helpers

scn_need_host() {
    [ "${HOST_STATE[$1]:-}" = up ] || bail "$SCN_FILE:$SCN_LINE: host $1 is not up"
}

scn_guest_pid() {
    local pid=${GUEST_PID[$1/$2]:-}
    [ -n "$pid" ] || bail "$SCN_FILE:$SCN_LINE: no guest $2 was started on host $1"
    echo "$pid"
}

# The first host that is up (not the storage host): where shared files are created.
scn_any_host() {
    local name
    for name in "${SIM_HOST_ORDER[@]}"; do
        [ "$name" != storage ] && [ "$name" != featureprobe ] && [ "${HOST_STATE[$name]:-}" = up ] &&
            { echo "$name"; return 0; }
    done
    return 1
}

first_line() { head -n 1 <<<"$1"; }

# The slowest granted and refused starts are key figures of every scenario that starts guests.
SCN_GRANT_MS_MAX=""
SCN_REFUSE_MS_MAX=""
scn_note_ms() {
    local var=$1 ms=${2%.*}
    if [ -z "${!var}" ] || [ "$ms" -gt "${!var}" ]; then
        printf -v "$var" '%s' "$ms"
    fi
}

# ---------------------------------------------------------------- hosts and disks

v_hosts() {
    local name
    for name in "$@"; do
        host_up "$name"
    done
}

v_up() {
    local again=""
    [ -n "${HOST_INDEX[$1]:-}" ] && again=1
    [ -n "$again" ] && scn_ref "host$1's reboot"
    host_up "$1"
}

v_crash() {
    scn_need_host "$1"
    scn_ref "host$1's crash"
    host_crash "$1"
}

v_disk() {
    local name=$1 size=${2:-1M} host path
    host=$(scn_any_host) || bail "$SCN_FILE:$SCN_LINE: 'disk' needs a host that is up"
    path=$(sim_disk_path "$name")
    host_run "$host" truncate -s "$size" "$path" || bail "cannot create disk $name: $HOST_ERR"
    tl "$host" "disk $name: $path ($size) on the shared $SIM_TIER tier"
}

v_note() {
    tl note "$*"
}

# ---------------------------------------------------------------- guests

v_start() {
    local host=$1 vm=$2 want="" frag="" spec name flags t0 ms pid="" what="" specs=""
    local -a opts=()
    shift 2
    while [ $# -gt 0 ]; do
        case $1 in
        '=>') want=${2:-}; frag=${3:-}; break ;;
        action=*) opts+=(--action "${1#action=}"); what+=" ${1}" ;;
        *)
            spec=$1
            name=${spec%%:*}
            flags=""
            [ "$name" != "$spec" ] && flags=${spec#*:}
            case $flags in ""|shared|readonly) ;; *) bail "$SCN_FILE:$SCN_LINE: disk flag '$flags' (shared or readonly)" ;; esac
            opts+=(--disk "$(sim_disk_path "$name")${flags:+,$flags}")
            specs+=" $(sim_disk_path "$name")${flags:+,$flags}"
            what+=" $spec"
            ;;
        esac
        shift
    done
    case $want in ok|busy) ;; *) bail "$SCN_FILE:$SCN_LINE: start needs '=> ok' or '=> busy'" ;; esac
    scn_need_host "$host"
    t0=$(sim_now_us)
    host_vmlock "$host" start --name "$vm" "${opts[@]}"
    ms=$(sim_ms_between "$t0" "$(sim_now_us)")
    [[ "$HOST_OUT" =~ started\ [^\ ]+\ pid\ ([0-9]+) ]] && pid=${BASH_REMATCH[1]}
    if [ "$want" = ok ]; then
        if [ "$HOST_RC" = 0 ] && [ -n "$pid" ]; then
            GUEST_PID[$host/$vm]=$pid
            GUEST_DISKS[$host/$vm]=$specs
            scn_note_ms SCN_GRANT_MS_MAX "$ms"
            tl "$host" "start $vm (${what# }): GRANTED in $ms ms, stand-in QEMU pid $pid"
            ok "host$host: $vm starts with${what} (pid $pid, $ms ms)"
        else
            tl "$host" "start $vm (${what# }): FAILED in $ms ms: $(first_line "$HOST_ERR")"
            not_ok "host$host: $vm starts with${what}"
            diag "exit $HOST_RC; stdout: $HOST_OUT; stderr: $HOST_ERR"
            [ -n "$pid" ] && GUEST_PID[$host/$vm]=$pid
        fi
        return 0
    fi
    if [ "$HOST_RC" = 1 ] && [ -z "$pid" ] && [[ "$HOST_ERR" == *"resource busy"* ]] &&
        { [ -z "$frag" ] || [[ "$HOST_ERR" == *"$frag"* ]]; }; then
        tl "$host" "start $vm (${what# }): refused in $ms ms: $(first_line "$HOST_ERR")"
        scn_note_ms SCN_REFUSE_MS_MAX "$ms"
        ok "host$host: $vm is refused$what: $(first_line "$HOST_ERR" | cut -c1-90)..."
    else
        tl "$host" "start $vm (${what# }): NOT refused as expected (exit $HOST_RC) in $ms ms"
        not_ok "host$host: $vm is refused$what${frag:+ with \"$frag\"}"
        diag "exit $HOST_RC; stdout: $HOST_OUT; stderr: $HOST_ERR"
        [ -n "$pid" ] && GUEST_PID[$host/$vm]=$pid
    fi
}

v_kill_guest() {
    local host=$1 vm=$2 pid t0
    scn_need_host "$host"
    pid=$(scn_guest_pid "$host" "$vm")
    t0=$(sim_now_us)
    host_run "$host" kill -KILL "$pid"
    host_run "$host" "$PROBE" pidwait "$pid" --timeout 10
    if [ "$HOST_RC" = 0 ]; then
        tl "$host" "guest $vm (pid $pid) killed with SIGKILL, gone after $(sim_ms_between "$t0" "$(sim_now_us)") ms"
    else
        bail "guest $vm (pid $pid) on host $host did not die: $HOST_OUT $HOST_ERR"
    fi
}

v_guest_alive() {
    local host=$1 vm=$2 pid
    pid=$(scn_guest_pid "$host" "$vm")
    if host_run "$host" kill -0 "$pid"; then
        ok "host$host: guest $vm (pid $pid) is still running"
    else
        not_ok "host$host: guest $vm (pid $pid) is still running"
    fi
}

# guest-dies HOST VM within SECS
v_guest_dies() {
    local host=$1 vm=$2 secs=${4:-10} pid t0
    pid=$(scn_guest_pid "$host" "$vm")
    t0=$(sim_now_us)
    host_run --timeout $((secs + 10)) "$host" "$PROBE" pidwait "$pid" --timeout "$secs"
    if [ "$HOST_RC" = 0 ]; then
        GUEST_DEATH_US[$host/$vm]=$(sim_now_us)
        tl "$host" "guest $vm (pid $pid) is gone, $(sim_ms_between "$t0" "$(sim_now_us)") ms after we started waiting"
        ok "host$host: guest $vm is stopped within $secs s"
    else
        tl "$host" "guest $vm (pid $pid) still runs after $secs s"
        not_ok "host$host: guest $vm is stopped within $secs s"
    fi
}

# pause / resume / inquire: what a later libvirtd (a new vmlock-host process) does.
scn_domain_call() {
    local op=$1 host=$2 vm=$3 pid t0
    pid=$(scn_guest_pid "$host" "$vm")
    t0=$(sim_now_us)
    shift 3
    host_vmlock "$host" "$op" --name "$vm" --pid "$pid" "$@"
    SCN_CALL_MS=$(sim_ms_between "$t0" "$(sim_now_us)")
}

v_pause() {
    local host=$1 vm=$2
    scn_domain_disks "$host" "$vm"
    scn_domain_call release "$host" "$vm" "${SCN_DISK_OPTS[@]}"
    tl "$host" "pause $vm (libvirtd's release): exit $HOST_RC in $SCN_CALL_MS ms ${HOST_OUT}"
    if [ "$HOST_RC" = 0 ]; then ok "host$host: pausing $vm releases its leases"; else not_ok "host$host: pausing $vm releases its leases"; diag "$HOST_ERR"; fi
}

v_resume() {
    local host=$1 vm=$2 want=${4:-ok}
    [ "${3:-}" = "=>" ] || bail "$SCN_FILE:$SCN_LINE: resume HOST VM => ok|busy"
    scn_domain_disks "$host" "$vm"
    scn_domain_call acquire "$host" "$vm" "${SCN_DISK_OPTS[@]}"
    tl "$host" "resume $vm (libvirtd's acquire): exit $HOST_RC in $SCN_CALL_MS ms $(first_line "$HOST_ERR")"
    if { [ "$want" = ok ] && [ "$HOST_RC" = 0 ]; } ||
        { [ "$want" = busy ] && [ "$HOST_RC" = 1 ] && [[ "$HOST_ERR" == *"resource busy"* ]]; }; then
        ok "host$host: resuming $vm: $want"
    else
        not_ok "host$host: resuming $vm: $want"
        diag "exit $HOST_RC: $HOST_ERR"
    fi
}

v_inquire() {
    local host=$1 vm=$2
    scn_domain_disks "$host" "$vm"
    scn_domain_call inquire "$host" "$vm" "${SCN_DISK_OPTS[@]}"
    tl "$host" "inquire $vm: exit $HOST_RC in $SCN_CALL_MS ms: $(first_line "$HOST_OUT")"
    if [ "$HOST_RC" = 0 ]; then ok "host$host: a new libvirtd inquires $vm"; else not_ok "host$host: a new libvirtd inquires $vm"; diag "$HOST_ERR"; fi
}

# The --disk options a guest was started with (pause and resume pass the same set).
scn_domain_disks() {
    local spec
    SCN_DISK_OPTS=()
    for spec in ${GUEST_DISKS[$1/$2]:-}; do
        SCN_DISK_OPTS+=(--disk "$spec")
    done
}

# dies-before HOST VM HOST2 DISK: the guest was stopped before HOST2's watcher got DISK's
# lease (the timing inequality of lost-lock handling: the holder is gone before another
# host can write).  dies-before HOST VM reconnect: before the storage clients reconnected
# (gluster: no other host could lock anything before).  Both moments must have been
# observed (guest-dies, granted or storage-reconnected) before.
v_dies_before() {
    local host=$1 vm=$2 death=${GUEST_DEATH_US[$1/$2]:-} other what
    if [ "${3:-}" = reconnect ]; then
        other=${SIM_RECONNECT_US:-}
        what="the storage clients reconnected"
    else
        other=${WATCH_GRANT_US[$3/$4]:-}
        what="host$3 got $4's lease"
    fi
    if [ -z "$death" ] || [ -z "$other" ]; then
        not_ok "host$host's $vm was stopped before $what (not both observed)"
        return 0
    fi
    tl harness "$vm on host$host stopped $(sim_ms_between "$death" "$other") ms before $what"
    key "stopped_before=$(sim_ms_between "$death" "$other" | cut -d. -f1)ms"
    check "host$host's $vm was stopped before $what" test "$death" -lt "$other"
}

# ---------------------------------------------------------------- what a daemon holds

v_holds() {
    local host=$1 vm=$2 disk=$3 path leases
    path=$(sim_disk_path "$disk")
    leases=$(host_leases "$host")
    if grep -F -- "disk=$path " <<<"$leases" | grep -qF -- ",$vm,"; then
        ok "host$host: vmlockd lists $vm as a holder of $disk's lease"
    else
        not_ok "host$host: vmlockd lists $vm as a holder of $disk's lease"
        diag "leases: ${leases:-(none)}"
    fi
}

v_no_lease() {
    local host=$1 disk=$2 path leases
    path=$(sim_disk_path "$disk")
    leases=$(host_leases "$host")
    if grep -qF -- "disk=$path " <<<"$leases"; then
        not_ok "host$host: vmlockd holds no lease for $disk"
        diag "leases: $leases"
    else
        ok "host$host: vmlockd holds no lease for $disk"
    fi
}

# ---------------------------------------------------------------- storage-level waiters

v_watch() {
    local host=$1 disk=$2
    scn_need_host "$host"
    WATCH_START_US[$host/$disk]=$(sim_now_us)
    host_spawn "$host" "watch-$disk" "$PROBE" wait "$(sim_lease_path "$disk")" || return 0
    tl "$host" "watching $disk's lease file with a blocking F_SETLKW"
}

v_wait_free() {
    local host=$1 disk=$2 secs=${3:-30} t0
    v_watch "$host" "$disk"
    t0=${WATCH_START_US[$host/$disk]}
    if ! host_job_wait "$host" "watch-$disk" "$secs"; then
        tl "$host" "$disk's lease is still not free after $secs s"
        not_ok "host$host: $disk's lease becomes free within $secs s"
    elif [ "$JOB_RC" != 0 ]; then
        tl "$host" "the waiter on $disk's lease failed (exit $JOB_RC): $(cat "$SIM_DIR/h/$host/jobs/watch-$disk.out" 2>/dev/null)"
        not_ok "host$host: $disk's lease becomes free (the waiter failed)"
    else
        tl "$host" "$disk's lease is free (waited $(sim_ms_between "$t0" "$JOB_END_US") ms)"
    fi
}

# granted HOST DISK within SECS [after SECS] [as KEY]
v_granted() {
    local host=$1 disk=$2 within="" after="" as="" from since ms whole
    shift 2
    while [ $# -gt 0 ]; do
        case $1 in
        within) within=$2; shift 2 ;;
        after) after=$2; shift 2 ;;
        as) as=$2; shift 2 ;;
        *) bail "$SCN_FILE:$SCN_LINE: granted HOST DISK within SECS [after SECS] [as KEY]" ;;
        esac
    done
    [ -n "$within" ] || bail "$SCN_FILE:$SCN_LINE: granted needs 'within SECS'"
    from=${WATCH_START_US[$host/$disk]:-}
    [ -n "$from" ] || bail "$SCN_FILE:$SCN_LINE: no watch on $disk from host $host"
    since="the watch"
    if [ -n "$SIM_REF_US" ] && [ "$SIM_REF_US" -gt "$from" ]; then
        from=$SIM_REF_US
        since=$SIM_REF_WHAT
    fi
    # Wait from now until the deadline counted from the reference point.
    local left=$(( (from + within * 1000000 - $(sim_now_us)) / 1000000 + 1 ))
    [ "$left" -lt 1 ] && left=1
    if host_job_wait "$host" "watch-$disk" "$left" && [ "$JOB_RC" = 0 ]; then
        WATCH_GRANT_US[$host/$disk]=$JOB_END_US
        ms=$(sim_ms_between "$from" "$JOB_END_US")
        whole=${ms%.*}
        tl "$host" "$disk's lease GRANTED to the watcher $ms ms after $since"
        [ -n "$as" ] && key "$as=${whole}ms"
        if [ "$whole" -le $((within * 1000)) ] && { [ -z "$after" ] || [ "$whole" -ge $((after * 1000)) ]; }; then
            ok "host$host gets $disk's lease ${after:+no sooner than $after s and }within $within s of $since ($ms ms)"
        else
            not_ok "host$host gets $disk's lease ${after:+no sooner than $after s and }within $within s of $since ($ms ms)"
        fi
    else
        tl "$host" "$disk's lease still not granted $within s after $since"
        not_ok "host$host gets $disk's lease within $within s of $since"
        [ -n "$as" ] && key "$as=none"
    fi
}

# blocked HOST DISK for SECS
v_blocked() {
    local host=$1 disk=$2 secs=${4:-}
    if [ "${3:-}" != for ] || [ -z "$secs" ]; then
        bail "$SCN_FILE:$SCN_LINE: blocked HOST DISK for SECS"
    fi
    if host_job_wait "$host" "watch-$disk" "$secs"; then
        tl "$host" "$disk's watcher ended (exit $JOB_RC) within $secs s"
        not_ok "host$host is still refused $disk's lease $secs s later"
    else
        tl "$host" "$disk's watcher still blocked after $secs s"
        ok "host$host is still refused $disk's lease $secs s later"
    fi
}

# ---------------------------------------------------------------- daemons

scn_daemon_serves() {
    "$VMLOCKCTL" --socket "$SIM_DIR/h/$1/run/vmlockd-admin-sock" status >/dev/null 2>&1
}

v_daemon_reexec() {
    local host=$1 pid t0
    pid=$(host_daemon_pid "$host")
    t0=$(sim_now_us)
    host_run "$host" kill -USR1 "$pid"
    # The listening sockets are inherited across exec: this call waits until it serves.
    if scn_daemon_serves "$host" && [ "$(host_daemon_pid "$host")" = "$pid" ] &&
        host_run "$host" kill -0 "$pid"; then
        tl "$host" "vmlockd (pid $pid) re-executed on SIGUSR1, serving again after $(sim_ms_between "$t0" "$(sim_now_us)") ms"
        ok "host$host: vmlockd re-executes in place and serves again"
    else
        tl "$host" "vmlockd (pid $pid) did not come back from SIGUSR1"
        not_ok "host$host: vmlockd re-executes in place and serves again"
    fi
}

v_daemon_kill9() {
    local host=$1 pid t0 dir=$SIM_DIR/h/$1
    pid=$(host_daemon_pid "$host")
    t0=$(sim_now_us)
    host_run "$host" kill -KILL "$pid"
    host_run "$host" "$PROBE" pidwait "$pid" --timeout 10
    tl "$host" "vmlockd (pid $pid) killed with SIGKILL"
    if host_run "$host" "$VMLOCKD" -d -f "$dir/vmlockd.conf" -p "$dir/run/vmlockd.pid" &&
        scn_daemon_serves "$host"; then
        tl "$host" "a new vmlockd (pid $(host_daemon_pid "$host")) serves $(sim_ms_between "$t0" "$(sim_now_us)") ms after the kill"
        ok "host$host: a new vmlockd starts after kill -9 of the old one"
    else
        not_ok "host$host: a new vmlockd starts after kill -9 of the old one"
        diag "$HOST_ERR $(tail -n 5 "$dir/log/vmlockd.log")"
    fi
}

# hammer-start HOST DISK: one guest of HOST acquires DISK in a loop; any grant is a violation.
v_hammer_start() {
    local host=$1 disk=$2 dir=$SIM_DIR/h/$1 go g
    go=$dir/hammer.go
    rm -f "$go"
    mkfifo "$go"
    host_spawn "$host" hammer "$NFSSIM_BINDIR/vml-sim-contend" --plugin "$VMLOCK_PLUGIN" \
        --config "$dir/plugin.conf" --host "host$host-hammer" --guests 1 --rounds 100000000 \
        --verify-reads 0 --expect-busy --go-fifo "$go" --disk "$(sim_disk_path "$disk")" || return 0
    host_job_line "$host" hammer 30
    [ "$JOB_LINE" = ready ] || bail "the hammer on host $host did not start: $(tail -n 5 "$dir/jobs/hammer.err")"
    exec {g}<>"$go"
    JOB_OUT_FD["$host/hammer-go"]=$g    # closed by the teardown with the other job FIFOs
    echo go >&"$g"
    tl "$host" "hammer started: a guest of host$host tries to acquire $disk continuously"
}

v_hammer_stop() {
    local host=$1 pid line attempts grants
    pid=$(host_job_pid "$host" hammer)
    host_run "$host" kill -TERM "$pid"
    host_job_line "$host" hammer 60
    line=$JOB_LINE
    host_job_wait "$host" hammer 30
    attempts=$(sed -n 's/.* attempts=\([0-9]*\).*/\1/p' <<<"$line")
    grants=$(sed -n 's/.* granted=\([0-9]*\).*/\1/p' <<<"$line")
    tl "$host" "hammer stopped: ${attempts:-?} attempts, ${grants:-?} grants (exit ${JOB_RC:-?})"
    key "hammer_attempts=${attempts:-?}" "hammer_grants=${grants:-?}"
    if [ -n "$attempts" ] && [ "$attempts" -gt 0 ] && [ "$grants" = 0 ] && [ "$JOB_RC" = 0 ]; then
        ok "host$host never acquired the disk held elsewhere ($attempts attempts)"
    else
        not_ok "host$host never acquired the disk held elsewhere"
        diag "hammer: $line (exit ${JOB_RC:-none}); $(tail -n 5 "$SIM_DIR/h/$host/jobs/hammer.err")"
    fi
}

# ---------------------------------------------------------------- contention

# contend hosts=N guests=M disks=K rounds=R [verify=V]: hosts C1..CN (brought up if needed),
# disks c1..cK; every host runs vml-sim-contend (M guests, R rounds each, an O_DIRECT oracle
# on the disk images, which live on the shared tier); all start together.
v_contend() {
    local nhosts=4 guests=2 ndisks=2 rounds=1000 verify=2 expect=none arg i h
    for arg in "$@"; do
        case $arg in
        hosts=*) nhosts=${arg#hosts=} ;;
        guests=*) guests=${arg#guests=} ;;
        disks=*) ndisks=${arg#disks=} ;;
        rounds=*) rounds=${arg#rounds=} ;;
        verify=*) verify=${arg#verify=} ;;
        expect=double-grants) expect=double-grants ;;
        *) bail "$SCN_FILE:$SCN_LINE: contend hosts=N guests=M disks=K rounds=R [verify=V] [expect=double-grants]" ;;
        esac
    done
    local -a hosts=() disk_opts=()
    for ((i = 1; i <= nhosts; i++)); do
        h=C$i
        hosts+=("$h")
        [ "${HOST_STATE[$h]:-}" = up ] || host_up "$h"
    done
    for ((i = 1; i <= ndisks; i++)); do
        v_disk "c$i" 1M
        disk_opts+=(--disk "$(sim_disk_path "c$i")")
    done
    local go=$SIM_DIR/contend.go g t0 t1
    local -A go_fd=()
    for h in "${hosts[@]}"; do
        rm -f "$go.$h"
        mkfifo "$go.$h"
        host_spawn "$h" contend "$NFSSIM_BINDIR/vml-sim-contend" --plugin "$VMLOCK_PLUGIN" \
            --config "$SIM_DIR/h/$h/plugin.conf" --host "host$h" --guests "$guests" --rounds "$rounds" \
            --verify-reads "$verify" --go-fifo "$go.$h" "${disk_opts[@]}" || bail "cannot start the contention driver on $h"
    done
    for h in "${hosts[@]}"; do
        host_job_line "$h" contend 60
        [ "$JOB_LINE" = ready ] || bail "the contention driver on $h did not get ready: $(tail -n 5 "$SIM_DIR/h/$h/jobs/contend.err")"
        exec {g}<>"$go.$h"
        go_fd[$h]=$g
        JOB_OUT_FD["$h/contend-go"]=$g
    done
    tl harness "contention: $nhosts hosts x $guests guests racing for $ndisks disks, $rounds rounds per guest, go"
    t0=$(sim_now_us)
    for h in "${hosts[@]}"; do
        echo go >&"${go_fd[$h]}"
    done
    # Bounded: far above what the slowest tier needs per attempt (about 10 ms on gluster).
    local limit=$((rounds * guests * nhosts / 20 + 120)) line
    local attempts=0 granted=0 busy=0 errors=0 races=0 doubles=0 relerr=0 failed=0 v
    for h in "${hosts[@]}"; do
        if ! host_job_line "$h" contend "$limit"; then
            not_ok "host$h's contention driver reports within $limit s"
            failed=1
            continue
        fi
        line=$JOB_LINE
        host_job_wait "$h" contend 30
        tl "$h" "${line#contend }"
        for v in attempts granted busy errors races double_grants release_errors; do
            local n
            n=$(sed -n "s/.* $v=\\([0-9]*\\).*/\\1/p" <<<"$line")
            [ -n "$n" ] || { failed=1; continue; }
            case $v in
            attempts) attempts=$((attempts + n)) ;;
            granted) granted=$((granted + n)) ;;
            busy) busy=$((busy + n)) ;;
            errors) errors=$((errors + n)) ;;
            races) races=$((races + n)) ;;
            double_grants) doubles=$((doubles + n)) ;;
            release_errors) relerr=$((relerr + n)) ;;
            esac
        done
        [ "${JOB_RC:-}" = 0 ] || { failed=1; diag "host $h: driver exit ${JOB_RC:-none}: $(tail -n 8 "$SIM_DIR/h/$h/jobs/contend.err")"; }
    done
    t1=$(sim_now_us)
    local wall_ms
    wall_ms=$(sim_ms_between "$t0" "$t1")
    wall_ms=${wall_ms%.*}
    tl harness "contention done in $wall_ms ms: $attempts attempts, $granted granted, $busy busy, $races lease-file races, $errors errors, $doubles DOUBLE GRANTS"
    key "hosts=$nhosts" "guests=$guests" "disks=$ndisks" "rounds=$rounds" "attempts=$attempts" \
        "granted=$granted" "busy=$busy" "races=$races" "errors=$errors" "double_grants=$doubles" \
        "wall=${wall_ms}ms" "attempts_per_s=$((attempts * 1000 / (wall_ms > 0 ? wall_ms : 1)))"
    if [ "$expect" = double-grants ]; then
        # The oracle's self-test: with a lockspace that is not shared, it must see them.
        check "the oracle catches double grants when the lockspace is not shared ($doubles seen)" test "$doubles" -gt 0
        return 0
    fi
    expect_eq "$doubles" 0 "no double grant in $attempts attempts by $nhosts hosts x $guests guests on $ndisks disks (O_DIRECT oracle)"
    expect_eq "$relerr" 0 "every granted lease was released"
    expect_eq "$failed" 0 "every contention driver ran to the end"
    expect_eq "$attempts" $((nhosts * guests * rounds)) "every round was attempted"
    check "the disks were really contended (some grants, some refusals)" test "$granted" -gt 0 -a "$busy" -gt 0
    if [ "$errors" != 0 ] && [ "$SIM_TIER" = gluster ] && [ "$SIM_GLUSTER_CACHE" = default ]; then
        # Known, not hidden: with GlusterFS's default 1 s client caches and a loaded machine
        # (ASan pass), a few acquisitions fail with errors other than busy (seen: 109 of 4000,
        # acquisitions up to 12 s).  A refused start, never a double grant (asserted above).
        tap_count=$((tap_count + 1))
        echo "not ok $tap_count - no acquisition failed for a reason other than busy or a lease-file race ($errors did) # TODO GlusterFS default caches under load"
    else
        expect_eq "$errors" 0 "no acquisition failed for a reason other than busy or a lease-file race"
    fi
    # Races: the lease file was unlinked (and maybe recreated) by its releaser on another
    # host between this host's lookup and open: ESTALE, or EEXIST from a losing FUSE create
    # (vmlockd unlinks lease files on release, like virtlockd).  A refused start, never a
    # double grant; a lock manager that keeps its lease files has none.
    [ "$races" -gt 0 ] && diag "$races acquisitions met a lease file unlinked or recreated by another host (ESTALE/EEXIST)"
    check "at most 1% of the attempts met a lease-file race ($races)" test $((races * 100)) -le "$attempts"
}

# ---------------------------------------------------------------- storage faults

v_sim_ctl() {
    [ "$SIM_TIER" = sim ] || bail "$SCN_FILE:$SCN_LINE: sim-ctl is for the sim tier (prefix the line with @sim)"
    if sim_ctl "$@" >"$SIM_DIR/ctl.out" 2>&1; then
        tl storage "control: $* -> $(tail -n 1 "$SIM_DIR/ctl.out")"
    else
        tl storage "control: $* FAILED: $(cat "$SIM_DIR/ctl.out")"
        not_ok "sim server control command: $*"
    fi
}

v_mark() {
    SIM_MARK=$(sim_ctl seq) || bail "vml-nfssim-ctl seq failed"
}

# event NAME HOST|- [SECS]: a sim server event (for hostHOST, or any with '-') after the
# last mark (server-reboot marks too).
v_event() {
    local ev=$1 host=${2:--} secs=${3:-15} t0 who
    local -a filter=()
    [ "$host" != - ] && filter=("host$host")
    who=${filter[0]:-any host}
    t0=$(sim_now_us)
    if sim_ctl wait-event "$ev" "${filter[@]}" --since "$SIM_MARK" --timeout "$secs" >"$SIM_DIR/ev.out" 2>&1; then
        tl storage "event: $(tail -n 1 "$SIM_DIR/ev.out") (waited $(sim_ms_between "$t0" "$(sim_now_us)") ms)"
        ok "the sim server reports $ev ($who)"
    else
        tl storage "no $ev event ($who) within $secs s: $(tail -n 1 "$SIM_DIR/ev.out")"
        not_ok "the sim server reports $ev ($who)"
    fi
}

v_partition() {
    local host=$1
    shift
    scn_ref "host$host's partition"
    v_sim_ctl partition "host$host" "$@"
}

v_heal() {
    v_sim_ctl heal "host$1"
}

v_server_reboot() {
    local grace=${1:-$SIM_SIM_GRACE}
    v_mark
    scn_ref "the server reboot"
    v_sim_ctl reboot --grace "$grace"
}

v_brick_restart() {
    [ "$SIM_TIER" = gluster ] || bail "$SCN_FILE:$SCN_LINE: brick-restart is for the gluster tier"
    local pid t0 deadline tries=0
    pid=$(gluster_brick_pid) || bail "cannot find the brick's pid"
    scn_ref "the brick's restart"
    t0=$(sim_now_us)
    host_run storage kill -KILL "$pid"
    host_run storage "$PROBE" pidwait "$pid" --timeout 10
    tl storage "brick (pid $pid) killed with SIGKILL"
    # glusterd may not have noticed the brick's death yet: 'start force' is then a no-op.
    deadline=$((t0 + 60000000))
    while [ "$(sim_now_us)" -lt "$deadline" ]; do
        tries=$((tries + 1))
        gluster_cli volume start "$SIM_GLUSTER_VOL" force >/dev/null 2>&1
        gluster_brick_online && [ "$(gluster_brick_pid)" != "$pid" ] && break
    done
    if gluster_brick_online; then
        tl storage "brick restarted (pid $(gluster_brick_pid), $tries 'volume start force') after $(sim_ms_between "$t0" "$(sim_now_us)") ms"
    else
        bail "the brick did not come back within 60 s"
    fi
}

# storage-reconnected: gluster: every host that is up has its client connected to the brick
# again (clients retry about every 3 s; until then their mounts fail with ENOTCONN, so no
# host can take a lock before).  The moment is what "dies-before HOST VM reconnect" compares.
v_storage_reconnected() {
    [ "$SIM_TIER" = gluster ] || return 0
    local name want=0 got=0 t0 deadline
    for name in "${SIM_HOST_ORDER[@]}"; do
        [ "$name" = storage ] || [ "$name" = featureprobe ] && continue
        [ "${HOST_STATE[$name]:-}" = up ] && want=$((want + 1))
    done
    t0=$(sim_now_us)
    deadline=$((t0 + 60000000))
    # Bounded: each round is one CLI call to glusterd (tens of ms); nothing signals it.
    while [ "$(sim_now_us)" -lt "$deadline" ]; do
        got=$(gluster_clients_connected)
        [ "$got" -ge "$want" ] && break
    done
    SIM_RECONNECT_US=$(sim_now_us)
    if [ "$got" -ge "$want" ]; then
        tl storage "all $want clients are connected to the brick again ($(sim_ms_between "$t0" "$SIM_RECONNECT_US") ms)"
    else
        bail "only $got of $want gluster clients reconnected within 60 s"
    fi
}
