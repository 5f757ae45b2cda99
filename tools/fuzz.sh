#!/bin/bash
# tools/fuzz.sh: build the libFuzzer targets (clang, ASan+UBSan) and run each for SECONDS; prints executions, coverage and crashes per target.
#
#   tools/fuzz.sh SECONDS [TARGET...]         default: every target in tests/fuzz/meson.build
#
#   VML_FUZZ_DIR=DIR    where the clang build, the grown corpora, crash artifacts and logs go
#                       (default: build-fuzz/ in the checkout).  The grown corpus of TARGET
#                       is DIR/corpus/TARGET; it is kept between runs and never written into
#                       the tree (the committed seeds are tests/fuzz/corpus/TARGET).
#   VML_FUZZ_JOBS=N     parallel fuzzing processes per target (libFuzzer -fork=N); default 1.
#   VML_FUZZ_ARGS=...   extra libFuzzer flags for every target.
#
# Targets run one after the other (one core each).  A crash, leak, timeout or out-of-memory
# leaves DIR/artifacts/TARGET-* and makes the exit status 1; reproduce it with
#   DIR/build/tests/fuzz/fuzz-TARGET FILE
# and keep it as a regression input: tests/fuzz/regress/TARGET/NAME (+ NAME.todo while the
# bug is open).  The summary ends with one line per target:
#   fuzz: TARGET: N execs in S s (E/s), cov C, ft F, corpus K, crashes X
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_EACH=${1:-}
if ! [[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || [ "$SECONDS_EACH" -lt 1 ]; then
    echo "usage: tools/fuzz.sh SECONDS [TARGET...]  (SECONDS: a positive whole number)" >&2
    exit 2
fi
shift
WORK=${VML_FUZZ_DIR:-$ROOT/build-fuzz}
BUILD=$WORK/build
JOBS=${VML_FUZZ_JOBS:-1}
mkdir -p "$WORK/corpus" "$WORK/artifacts" "$WORK/logs" || exit 1
WORK=$(cd "$WORK" && pwd)

ALL_TARGETS=(dispatch dmn_config drv_config domain_xml record handover client)
if [ $# -gt 0 ]; then
    TARGETS=("$@")
else
    TARGETS=("${ALL_TARGETS[@]}")
fi

# Per target: the longest input worth trying (bigger inputs only slow the search down).
max_len() {
    case $1 in
        dispatch) echo 16384 ;;
        domain_xml) echo 16384 ;;
        record) echo 4200 ;;
        handover) echo 65536 ;;
        client) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

command -v clang >/dev/null || { echo "fuzz: clang is not installed (apt-get install clang)" >&2; exit 1; }
if ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
    echo "fuzz: libFuzzer is missing: apt-get install libclang-rt-14-dev (or the one of your clang)" >&2
    exit 1
fi

# Configure once (a clang build with ASan+UBSan and libFuzzer's coverage instrumentation
# in every object); later runs only rebuild.  -Db_lundef=false: the sanitizer runtime is
# linked into executables, not into vmlockd.so.  libtirpc is linked into every program,
# as tools/check.sh explains for its ASan build.
if [ ! -f "$BUILD/build.ninja" ]; then
    echo "fuzz: configuring $BUILD (clang, -fsanitize=address,undefined, -fsanitize=fuzzer-no-link)"
    if ! CC=clang meson setup "$BUILD" "$ROOT" -Dbuildtype=debugoptimized \
            -Db_sanitize=address,undefined -Db_lundef=false \
            -Dc_args=-fsanitize=fuzzer-no-link \
            "-Dc_link_args=-Wl,--no-as-needed -ltirpc -Wl,--as-needed" >"$WORK/logs/setup.log" 2>&1; then
        tail -n 30 "$WORK/logs/setup.log"
        echo "fuzz: meson setup failed (log: $WORK/logs/setup.log)" >&2
        exit 1
    fi
fi
build_targets=()
for t in "${TARGETS[@]}"; do
    build_targets+=("tests/fuzz/fuzz-$t")
done
if ! ninja -C "$BUILD" "${build_targets[@]}" >"$WORK/logs/build.log" 2>&1; then
    tail -n 40 "$WORK/logs/build.log"
    echo "fuzz: build failed (log: $WORK/logs/build.log)" >&2
    exit 1
fi

status=0
summary=()
for t in "${TARGETS[@]}"; do
    exe=$BUILD/tests/fuzz/fuzz-$t
    seeds=$ROOT/tests/fuzz/corpus/$t
    grown=$WORK/corpus/$t
    log=$WORK/logs/$t.log
    mkdir -p "$grown"
    dict=()
    [ -f "$ROOT/tests/fuzz/dict/$t.dict" ] && dict=(-dict="$ROOT/tests/fuzz/dict/$t.dict")
    fork=()
    [ "$JOBS" -gt 1 ] && fork=(-fork="$JOBS" -ignore_crashes=0)
    before=$(find "$WORK/artifacts" -name "$t-*" -type f | wc -l)
    echo "fuzz: $t for ${SECONDS_EACH}s (log $log)"
    start=$(date +%s)
    # VMLFUZZ_RW: the only host directories the sandboxed targets may write (fuzz_sandbox.h).
    # shellcheck disable=SC2086  # VML_FUZZ_ARGS is a list of flags
    VMLFUZZ_RW="$grown:$WORK/artifacts" \
    ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}" \
        "$exe" "$grown" "$seeds" -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" \
            -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$WORK/artifacts/$t-" "${dict[@]}" "${fork[@]}" \
            ${VML_FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' <<<"$last" | awk '{print $2}')
    ft=$(grep -o 'ft: [0-9]*' <<<"$last" | awk '{print $2}')
    corpus=$(grep -o 'corp: [0-9]*' <<<"$last" | awk '{print $2}')
    after=$(find "$WORK/artifacts" -name "$t-*" -type f | wc -l)
    crashes=$((after - before))
    rate=$((execs / (took > 0 ? took : 1)))
    line="fuzz: $t: $execs execs in ${took} s (${rate}/s), cov ${cov:-?}, ft ${ft:-?}, corpus ${corpus:-?}, crashes $crashes"
    if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        status=1
        line="$line, exit $rc: FAILED"
        grep -E 'ERROR: |INVARIANT BROKEN|SUMMARY|runtime error|Test unit written' "$log" | head -n 12
    fi
    echo "$line"
    summary+=("$line")
done
echo
printf '%s\n' "${summary[@]}"
if [ "$status" -ne 0 ]; then
    echo "fuzz: crash artifacts in $WORK/artifacts (reproduce: $BUILD/tests/fuzz/fuzz-TARGET FILE)"
fi
exit "$status"
