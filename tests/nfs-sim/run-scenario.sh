#!/bin/bash
# run-scenario.sh: runs multi-host scenario files (scenarios/*.scn) on a storage tier, printing each one's TAP, verdict and key timings, and a summary table.
#
# usage: run-scenario.sh [--tier sim|gluster] [--results DIR] FILE...
#        run-scenario.sh --summary DIR          print the table of the results kept in DIR
#        run-scenario.sh --clear-results DIR    forget earlier results (start of a suite run)
#
# One FILE: its TAP goes straight through (for meson), then its verdict line.
# Several: one TAP line per scenario (its own output indented as diagnostics), then the table.
# Environment: NFSSIM_BINDIR (build dir of tests/nfs-sim), VMLOCKD, VMLOCK_HOST, VMLOCKCTL,
# VMLOCK_PLUGIN (meson passes them; or VML_BUILD_DIR = a build directory of this tree),
# NFSSIM_RESULTS (as --results), NFSSIM_LOGDIR (keep each run's timeline and logs there),
# NFSSIM_KEEP=1 (print the logs of a passing run too).
# The scenario language is described in docs/nfs-sim.md and in scenario-verbs.sh.

set -u
SIM_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SIM_SELF=$SIM_HERE/$(basename "${BASH_SOURCE[0]}")

if [ -n "${VML_BUILD_DIR:-}" ]; then
    : "${NFSSIM_BINDIR:=$VML_BUILD_DIR/tests/nfs-sim}"
    : "${VMLOCKD:=$VML_BUILD_DIR/daemon/vmlockd}"
    : "${VMLOCK_HOST:=$VML_BUILD_DIR/tools/vmlock-host}"
    : "${VMLOCKCTL:=$VML_BUILD_DIR/tools/vmlockctl}"
    : "${VMLOCK_PLUGIN:=$VML_BUILD_DIR/driver/vmlockd.so}"
    export NFSSIM_BINDIR VMLOCKD VMLOCK_HOST VMLOCKCTL VMLOCK_PLUGIN
fi

usage() {
    sed -n '4,7p' "$SIM_SELF" | sed 's/^# \{0,1\}//'
    exit "${1:-64}"
}

# ---------------------------------------------------------------- results and the table

# A result file: one line, tab-separated: scenario, tier, verdict, wall seconds, keys/reason.
sim_summary() {
    local dir=$1 f scenario tier verdict wall keys n=0 failed=0
    echo "# ==== nfs-sim summary ($(date '+%F %T'))"
    printf '# %-28s %-8s %-5s %8s  %s\n' scenario tier verdict wall "key figures / reason"
    for f in "$dir"/*.result; do
        [ -f "$f" ] || continue
        IFS=$'\t' read -r scenario tier verdict wall keys <"$f"
        printf '# %-28s %-8s %-5s %7ss  %s\n' "$scenario" "$tier" "$verdict" "$wall" "$keys"
        n=$((n + 1))
        [ "$verdict" = FAIL ] && failed=$((failed + 1))
    done
    [ "$n" = 0 ] && echo "# (no results in $dir)"
    SUMMARY_COUNT=$n
    SUMMARY_FAILED=$failed
}

# Run one scenario in a child (its own traps and namespaces); set RUN_VERDICT, RUN_KEYS,
# RUN_WALL, RUN_RC.  $2 = "raw" to pass its TAP through, "indent" to show it as diagnostics.
sim_run_one() {
    local file=$1 mode=$2 tier=$3 line t0 t1 out
    out=$(mktemp /tmp/vmlsim-run.XXXXXX)
    t0=${EPOCHREALTIME/./}
    # Stream the child's output as it comes (meson and a person both see progress).
    bash "$SIM_SELF" --one "$file" --tier "$tier" 2>&1 </dev/null | tee "$out" |
        while IFS= read -r line; do
            if [ "$mode" = raw ]; then echo "$line"; else echo "#   $line"; fi
        done
    RUN_RC=${PIPESTATUS[0]}
    t1=${EPOCHREALTIME/./}
    RUN_WALL=$(printf '%d.%d' $(((t1 - t0) / 1000000)) $((((t1 - t0) / 100000) % 10)))
    RUN_KEYS=$(sed -n 's/^# key: //p' "$out" | tr '\n' ' ' | sed 's/ *$//')
    if grep -q '^1\.\.0 # SKIP' "$out"; then
        RUN_VERDICT=SKIP
        RUN_KEYS=$(sed -n 's/^1\.\.0 # SKIP //p' "$out" | head -n 1)
    elif [ "$RUN_RC" = 0 ] && ! grep -q '^not ok' "$out" && grep -q '^1\.\.[1-9]' "$out"; then
        RUN_VERDICT=PASS
    else
        RUN_VERDICT=FAIL
        [ -n "$RUN_KEYS" ] || RUN_KEYS="$(grep -m1 -E '^(not ok|Bail out)' "$out")"
    fi
    rm -f "$out"
}

sim_main() {
    local tier=sim results=${NFSSIM_RESULTS:-} file scenario mode n=0 failed=0 tmpres=""
    local -a files=()
    while [ $# -gt 0 ]; do
        case $1 in
        --tier) tier=${2:-}; shift 2 || usage ;;
        --results) results=${2:-}; shift 2 || usage ;;
        --summary) [ -n "${2:-}" ] || usage; sim_summary "$2"; echo "ok 1 - summary of $SUMMARY_COUNT scenario run(s), $SUMMARY_FAILED failed"; echo "1..1"; exit 0 ;;
        --clear-results) [ -n "${2:-}" ] || usage; mkdir -p "$2"; rm -f "$2"/*.result; echo "ok 1 - results cleared"; echo "1..1"; exit 0 ;;
        -h|--help) usage 0 ;;
        -*) echo "run-scenario.sh: unknown option '$1'" >&2; usage ;;
        *) files+=("$1"); shift ;;
        esac
    done
    [ "${#files[@]}" -gt 0 ] || usage
    case $tier in sim|gluster) ;; *) echo "run-scenario.sh: unknown tier '$tier' (sim or gluster)" >&2; exit 64 ;; esac
    for file in "${files[@]}"; do
        [ -f "$file" ] || { echo "run-scenario.sh: no scenario file '$file'" >&2; exit 64; }
    done
    if [ -z "$results" ]; then
        tmpres=$(mktemp -d /tmp/vmlsim-results.XXXXXX)
        results=$tmpres
    fi
    mkdir -p "$results"
    mode=raw
    [ "${#files[@]}" -gt 1 ] && mode=indent
    for file in "${files[@]}"; do
        scenario=$(basename "$file" .scn)
        sim_run_one "$file" "$mode" "$tier"
        n=$((n + 1))
        printf '%s\t%s\t%s\t%s\t%s\n' "$scenario" "$tier" "$RUN_VERDICT" "$RUN_WALL" "$RUN_KEYS" \
            >"$results/$scenario.$tier.result"
        echo "# verdict: $RUN_VERDICT  $scenario [$tier]  ${RUN_WALL}s  $RUN_KEYS"
        if [ "$mode" = indent ]; then
            case $RUN_VERDICT in
            PASS) echo "ok $n - $scenario [$tier] ${RUN_WALL}s" ;;
            SKIP) echo "ok $n - $scenario [$tier] # SKIP $RUN_KEYS" ;;
            *) echo "not ok $n - $scenario [$tier]"; failed=$((failed + 1)) ;;
            esac
        fi
    done
    if [ "$mode" = indent ]; then
        sim_summary "$results"
        echo "1..$n"
    fi
    [ -n "$tmpres" ] && rm -rf "$tmpres"
    if [ "$mode" = raw ]; then
        exit "$RUN_RC"
    fi
    [ "$failed" = 0 ]
}

# ---------------------------------------------------------------- one scenario (child)

sim_one() {
    local file=$1 tier=$2
    SIM_TIER=$tier
    SIM_SCENARIO=$(basename "$file" .scn)
    if [ -n "${NFSSIM_LOGDIR:-}" ]; then
        SIM_LOG_KEEP_DIR=$NFSSIM_LOGDIR/$SIM_SCENARIO.$tier
        rm -rf "$SIM_LOG_KEEP_DIR"
    fi
    : "${NFSSIM_BINDIR:?NFSSIM_BINDIR must name the build directory of tests/nfs-sim (or set VML_BUILD_DIR)}"
    VML_LIB_DIR=$SIM_HERE/../lib
    # shellcheck source=nfssim-lib.sh
    . "$SIM_HERE/nfssim-lib.sh"
    # shellcheck source=simhost-lib.sh
    . "$SIM_HERE/simhost-lib.sh"
    # shellcheck source=scenario-verbs.sh
    . "$SIM_HERE/scenario-verbs.sh"
    scn_run_file "$file"
}

# --one FILE --tier T: the child that runs one scenario (internal).
if [ "${1:-}" = --one ]; then
    if [ $# -lt 4 ] || [ "$3" != --tier ]; then
        echo "run-scenario.sh --one FILE --tier T" >&2
        exit 64
    fi
    sim_one "$2" "$4"
else
    sim_main "$@"
fi
