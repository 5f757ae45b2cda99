# e2e_lib.sh: TAP helpers the scripts of tests/libvirt-e2e/ add to tests/lib/vml.sh (source it after vml.sh).
# shellcheck shell=bash

# skip_point DESC REASON: one test point that could not run here, reported as a TAP skip
# (never as a pass) with the reason.
skip_point() {
    VML_TAP_COUNT=$((VML_TAP_COUNT + 1))
    echo "ok $VML_TAP_COUNT - $1 # SKIP ${2:-}"
}

# wait_log_line FILE FROM_LINE WANTED FAILED TIMEOUT_S: follow FILE from line FROM_LINE as it is
# written until a line contains WANTED (returns 0) or FAILED (returns 1), or TIMEOUT_S seconds
# pass (returns 1).  The matching line is left in WAIT_LOG_LINE.  Blocks on the file, never sleeps.
# shellcheck disable=SC2034  # WAIT_LOG_LINE is an output for the caller
wait_log_line() {
    local file=$1 from=$2 wanted=$3 failed=$4 timeout_s=$5 fd follower line status=1
    WAIT_LOG_LINE=""
    exec {fd}< <(exec timeout "$timeout_s" tail -n "+$from" -F "$file" 2>/dev/null)
    follower=$!
    while IFS= read -r -u "$fd" line; do
        if [[ "$line" == *"$wanted"* ]]; then
            WAIT_LOG_LINE=$line
            status=0
            break
        fi
        if [[ "$line" == *"$failed"* ]]; then
            WAIT_LOG_LINE=$line
            break
        fi
    done
    kill "$follower" 2>/dev/null
    exec {fd}<&-
    return "$status"
}
