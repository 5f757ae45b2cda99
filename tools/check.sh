#!/bin/bash
# tools/check.sh: the whole test run (what CI runs): deps, an ASan/UBSan+coverage build with every suite, a plain build with the daemon under valgrind; ends with "N passed, N failed".
#
#   tools/check.sh                 from anywhere; builds under build-check/ in the checkout
#   VML_CHECK_DIR=/tmp/x tools/check.sh    build and log somewhere else
#
# Pass (a): -Db_sanitize=address,undefined -Db_coverage=true, `meson test` (all suites); any
#   sanitizer report from any process (daemons started with -d included) is a failure; then
#   lcov line coverage of the hand-written code in daemon/, driver/, xdr/ (HTML under
#   build-check/asan/coverage-html).
# Pass (c): every libFuzzer target for a bounded time (tests/fuzz/run-short.sh).
# Pass (b): a plain build; its integration suite starts every vmlockd under valgrind memcheck
#   (tests/lib/vml.sh honours VMLOCKD_WRAPPER); errors, leaks and descriptors a daemon left
#   open are failures.  Then the fault-injection loop, quick profile (tests/faultinj).
# The count is of TAP test points across both passes, plus one point per build, per
# sanitizer/valgrind verdict.  Exit status: 0 only when nothing failed.

set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=../tests/lib/deps.sh
. "$ROOT/tests/lib/deps.sh"

WORK=${VML_CHECK_DIR:-$ROOT/build-check}
ASAN_BUILD=$WORK/asan
PLAIN_BUILD=$WORK/plain
SAN_LOGS=$WORK/sanitizer-logs
VG_LOGS=$WORK/valgrind-logs
JOBS=$(nproc 2>/dev/null || echo 2)
START=$(date +%s)

PASSED=0
FAILED=0
SKIPPED=0
FAILURES=()

step() {
    echo
    echo "==> [$(($(date +%s) - START))s] $*"
}

point_ok() {
    PASSED=$((PASSED + 1))
    echo "check: ok - $*"
}

point_failed() {
    FAILED=$((FAILED + 1))
    FAILURES+=("$*")
    echo "check: FAILED - $*"
}

finish() {
    step "done in $(($(date +%s) - START))s"
    local failure
    for failure in "${FAILURES[@]}"; do
        echo "failed: $failure"
    done
    if [ "$SKIPPED" -gt 0 ]; then
        echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
    else
        echo "$PASSED passed, $FAILED failed"
    fi
    [ "$FAILED" -eq 0 ]
    exit
}

# A fresh `meson setup BUILD OPTIONS` (a reconfigure does not reliably apply changed
# c_link_args, and stale objects are not worth the risk: the build takes well under a minute).
configure() {
    local build=$1
    shift
    rm -rf "$build"
    meson setup "$build" "$ROOT" "$@"
}

# add_tap_counts BUILD LABEL: add the TAP points of BUILD's last `meson test` to the totals.
add_tap_counts() {
    local counts passed failed skipped
    if ! counts=$(python3 "$ROOT/tests/lib/vml_tapcount.py" "$1/meson-logs/testlog.json"); then
        point_failed "$2: no test log to count"
        return
    fi
    read -r passed failed skipped <<<"$counts"
    echo "check: $2: $passed passed, $failed failed, $skipped skipped (TAP points)"
    PASSED=$((PASSED + passed))
    SKIPPED=$((SKIPPED + skipped))
    if [ "$failed" -gt 0 ]; then
        FAILED=$((FAILED + failed))
        FAILURES+=("$2: $failed test point(s), see $1/meson-logs/testlog.txt")
    fi
}

# ------------------------------------------------------------------ dependencies

step "dependencies"
# shellcheck disable=SC2086  # word lists
if ! vml_install_packages $VML_BUILD_PACKAGES $VML_TEST_PACKAGES; then
    point_failed "installing the build and test dependencies"
    finish
fi

# ------------------------------------------------------------------ (a) ASan/UBSan + coverage

step "(a) configure and build with ASan/UBSan and coverage in $ASAN_BUILD"
mkdir -p "$WORK"
# ASan intercepts libtirpc's xdr_* and resolves the real functions once, at start-up: a
# process that only gets libtirpc later, through a dlopen()ed plugin (vmlock-host loading
# vmlockd.so or lockd.so), would call through a NULL pointer.  libvirtd always has libtirpc
# loaded (libvirt.so.0 needs it), so every test program gets it too.
if configure "$ASAN_BUILD" -Dbuildtype=debug -Db_sanitize=address,undefined -Db_coverage=true \
        "-Dc_link_args=-Wl,--no-as-needed -ltirpc -Wl,--as-needed" \
        >"$WORK/asan-setup.log" 2>&1 &&
   ninja -C "$ASAN_BUILD" >"$WORK/asan-build.log" 2>&1; then
    point_ok "ASan/UBSan build"
    ASAN_BUILT=1
else
    tail -n 40 "$WORK/asan-setup.log" "$WORK/asan-build.log" 2>/dev/null
    point_failed "ASan/UBSan build (logs: $WORK/asan-setup.log, $WORK/asan-build.log)"
    ASAN_BUILT=0
fi

if [ "$ASAN_BUILT" -eq 1 ]; then
    step "(a) meson test, every suite, sanitizer reports to $SAN_LOGS"
    rm -rf "$SAN_LOGS"
    mkdir -p "$SAN_LOGS"
    find "$ASAN_BUILD" -name '*.gcda' -delete
    # log_path: every process (daemons detached with -d too) writes its reports to a file
    # of its own, so none is lost with a closed stderr.  libvirt's lockd.so (interop) brings
    # libvirt.so.0 and glib into vmlock-host: their process-lifetime allocations are not ours.
    ASAN_OPTIONS="log_path=$SAN_LOGS/asan:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1" \
    UBSAN_OPTIONS="log_path=$SAN_LOGS/ubsan:print_stacktrace=1:halt_on_error=0" \
    LSAN_OPTIONS="suppressions=$ROOT/tests/lib/lsan.supp:print_suppressions=0" \
        meson test -C "$ASAN_BUILD" --no-rebuild --print-errorlogs --num-processes "$JOBS" \
            --timeout-multiplier 2 --no-suite faultinj-quick
    add_tap_counts "$ASAN_BUILD" "(a) meson test"

    reports=$(find "$SAN_LOGS" -type f | sort)
    if [ -z "$reports" ]; then
        point_ok "no ASan/UBSan/LSan report from any process"
    else
        for report in $reports; do
            echo "---- $report"
            head -n 60 "$report"
        done
        point_failed "sanitizer reports: $(wc -l <<<"$reports") file(s) in $SAN_LOGS"
    fi

    step "(a) line coverage of daemon/, driver/, xdr/ (hand-written code)"
    COV=$ASAN_BUILD/coverage
    rm -rf "$COV"
    mkdir -p "$COV"
    if lcov --quiet --capture --directory "$ASAN_BUILD" --base-directory "$ASAN_BUILD" \
            --output-file "$COV/all.info" >"$COV/lcov.log" 2>&1 &&
       lcov --quiet --extract "$COV/all.info" "$ROOT/daemon/*" "$ROOT/driver/*" "$ROOT/xdr/*" \
            --output-file "$COV/ours.info" >>"$COV/lcov.log" 2>&1 &&
       lcov --quiet --remove "$COV/ours.info" '*_xdr.c' '*/tests/*' \
            --output-file "$COV/hand-written.info" >>"$COV/lcov.log" 2>&1 &&
       genhtml --quiet --output-directory "$ASAN_BUILD/coverage-html" --title "vmlockd" \
            "$COV/hand-written.info" >>"$COV/lcov.log" 2>&1; then
        for dir in daemon driver xdr; do
            lcov --quiet --extract "$COV/hand-written.info" "$ROOT/$dir/*" \
                --output-file "$COV/$dir.info" >/dev/null 2>&1
            line=$(lcov --summary "$COV/$dir.info" 2>&1 | grep -m1 'lines\.\.')
            echo "coverage: $dir/: ${line#*: }"
        done
        line=$(lcov --summary "$COV/hand-written.info" 2>&1 | grep -m1 'lines\.\.')
        echo "coverage: total: ${line#*: }"
        echo "coverage: HTML report: $ASAN_BUILD/coverage-html/index.html"
    else
        echo "coverage: not available ($(tail -n 3 "$COV/lcov.log" | tr '\n' ' '))"
    fi
fi

# ------------------------------------------------------------------ (b) plain + valgrind

step "(b) configure and build (plain) in $PLAIN_BUILD"
if configure "$PLAIN_BUILD" >"$WORK/plain-setup.log" 2>&1 &&
   ninja -C "$PLAIN_BUILD" >"$WORK/plain-build.log" 2>&1; then
    point_ok "plain build"
    step "(b) integration suite with vmlockd under valgrind memcheck, logs in $VG_LOGS"
    rm -rf "$VG_LOGS"
    mkdir -p "$VG_LOGS"
    VMLOCKD_WRAPPER="valgrind --tool=memcheck --track-fds=yes --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=97 --log-file=$VG_LOGS/vmlockd.%p.log" \
    VML_DAEMON_PIDS_LOG=$VG_LOGS/daemon-pids VML_DAEMON_KILLED_LOG=$VG_LOGS/killed-pids \
        meson test -C "$PLAIN_BUILD" --no-rebuild --print-errorlogs --num-processes "$JOBS" \
            --suite integration --timeout-multiplier 3
    add_tap_counts "$PLAIN_BUILD" "(b) integration under valgrind"
    if ! ls "$VG_LOGS"/*.log >/dev/null 2>&1; then
        point_failed "valgrind: no daemon ran under valgrind (no logs in $VG_LOGS)"
    elif python3 "$ROOT/tests/lib/vml_vgcheck.py" "$VG_LOGS" "$VG_LOGS/daemon-pids" \
            "$VG_LOGS/killed-pids"; then
        point_ok "valgrind: no memory error, leak or leaked descriptor in any daemon"
    else
        point_failed "valgrind: problems in $VG_LOGS (see above)"
    fi
    step "(b) fault injection, quick profile (every scenario x every call family)"
    meson test -C "$PLAIN_BUILD" --no-rebuild --print-errorlogs --suite faultinj-quick
    add_tap_counts "$PLAIN_BUILD" "(b) fault injection"
    grep -h '^# faultinj: total' "$PLAIN_BUILD/meson-logs/testlog.txt" | sed 's/^# /check: /'
else
    tail -n 40 "$WORK/plain-setup.log" "$WORK/plain-build.log" 2>/dev/null
    point_failed "plain build (logs: $WORK/plain-setup.log, $WORK/plain-build.log)"
fi

# ------------------------------------------------------------------ (c) bounded fuzzing

# Every libFuzzer target (wire decoder + dispatcher, both config parsers, domain XML, owner
# records, re-exec handover, the plugin's reply reader) for VML_FUZZ_SECONDS each (default
# 20); a crash is a failure.
# The long runs are `tools/fuzz.sh SECONDS` (docs/hardening.md).
step "(c) bounded fuzzing: every target ${VML_FUZZ_SECONDS:-20} s"
if VML_FUZZ_DIR="$WORK/fuzz" "$ROOT/tests/fuzz/run-short.sh" "${VML_FUZZ_SECONDS:-20}" \
        >"$WORK/fuzz.log" 2>&1; then
    grep '^fuzz: ' "$WORK/fuzz.log"
    point_ok "fuzzing: no crash in any target"
else
    tail -n 40 "$WORK/fuzz.log"
    point_failed "fuzzing (log: $WORK/fuzz.log)"
fi

finish
