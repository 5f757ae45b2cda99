#!/bin/bash
# bench_smoke.sh: vmlock-bench runs every mode briefly against vmlockd.so + vmlockd and prints well-formed results (no timing is asserted).
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
: "${VMLOCK_BENCH:=${VML_BUILD_DIR:+$VML_BUILD_DIR/tools/vmlock-bench}}"
vml_require VMLOCKD VMLOCK_PLUGIN VMLOCK_STUB_QEMU VMLOCK_BENCH
vml_setup

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
vml_plugin_config "$VML_TMP/qemu-vmlockd.conf"
mkdir "$VML_TMP/work"
BENCH=("$VMLOCK_BENCH" --plugin "$VMLOCK_PLUGIN" --config "$VML_PLUGIN_CONF"
       --pidfile "$VML_DAEMON_PIDFILE" --socket "$VML_SOCK" --stub "$VMLOCK_STUB_QEMU"
       --workdir "$VML_TMP/work" --warmup 2)

# check_json DESC FILE EXPECTED-ROWS: FILE is one JSON document with the expected
# (participant, scope, metric) rows, each with n > 0 and ordered percentiles.
check_json() {
    local desc=$1 file=$2 expected=$3 why
    if why=$("$VML_PYTHON" - "$file" "$expected" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
rows = {(r["participant"], r["scope"], r["metric"]): r for r in doc["rows"]}
for want in sys.argv[2].split(";"):
    key = tuple(want.split("|"))
    if key not in rows:
        sys.exit("missing row %s; have %s" % (key, sorted(rows)))
    r = rows[key]
    if not (r["n"] > 0 and 0 < r["median_us"] <= r["p90_us"] <= r["p99_us"] <= r["max_us"]):
        sys.exit("row %s is not well formed: %s" % (key, r))
    if r["ops_per_s"] <= 0:
        sys.exit("row %s has no ops/s" % (key,))
for field in ("mode", "machine", "command", "participants", "ratios"):
    if field not in doc:
        sys.exit("no %s" % field)
PY
    ); then
        tap_ok "$desc"
    else
        tap_not_ok "$desc"
        diag "$why"
        diag "$(head -c 2000 "$file")"
    fi
}

# run_mode DESC ARGS...: the bench exits 0; its JSON is left in $VML_TMP/out.
run_mode() {
    local desc=$1
    shift
    vml_run "${BENCH[@]}" --json "$@"
    expect_rc 0 "$desc exits 0"
}

run_mode "latency with the floor" --floor latency 20
check_json "latency: acquire, release and cycle rows for the plugin and the floor" \
    "$VML_TMP/out" "vmlockd.so|1 disk|acquire;vmlockd.so|1 disk|release;vmlockd.so|1 disk|cycle;floor|1 disk|cycle"
tap_check "latency: the daemon's CPU per cycle is read from /proc" \
    "$VML_PYTHON" -c 'import json,sys; r=[r for r in json.load(open(sys.argv[1]))["rows"] if r["participant"]=="vmlockd.so" and r["metric"]=="cycle"][0]; sys.exit(0 if r["daemon_cpu_us_per_op"] is not None and r["daemon_cpu_us_per_op"] >= 0 else 1)' "$VML_TMP/out"
tap_check "latency: a vmlockd.so / floor ratio is reported" \
    "$VML_PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if any(r["numerator"]=="vmlockd.so" and r["denominator"]=="floor" for r in d["ratios"]) else 1)' "$VML_TMP/out"

run_mode "disks" --reps 3 disks 1,3
check_json "disks: a cycle row per K" "$VML_TMP/out" "vmlockd.so|K=1|cycle;vmlockd.so|K=3|cycle"

run_mode "parallel" --rounds 2 parallel 2 4
check_json "parallel: a cycle row" "$VML_TMP/out" "vmlockd.so|P=2|cycle"

run_mode "handoff" handoff 5
check_json "handoff: a handoff row" "$VML_TMP/out" "vmlockd.so|1 disk|handoff"

run_mode "fill" fill 50 5
check_json "fill: cycles before and after" "$VML_TMP/out" "vmlockd.so|empty|cycle;vmlockd.so|+50 leases|cycle"

run_mode "floor" floor 10
check_json "floor: the floor alone" "$VML_TMP/out" "floor|1 disk|cycle"

vml_run "${BENCH[@]}" latency 5
expect_rc 0 "the human table exits 0"
tap_check "the human table has no ratio without a second participant" \
    bash -c '! grep -q "^ratio" "$1"' _ "$VML_TMP/out"
expect_text out "vmlockd.so     1 disk           cycle" "the human table has the cycle row"

# The same plugin twice, interleaved: the B / A ratios are printed.
vml_run "${BENCH[@]}" --vs "$VMLOCK_PLUGIN:$VML_PLUGIN_CONF" --vs-label again --json latency 10
expect_rc 0 "--vs exits 0"
tap_check "--vs: again / vmlockd.so ratios" \
    "$VML_PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if any(r["numerator"]=="again" and r["denominator"]=="vmlockd.so" and r["metric"]=="cycle" for r in d["ratios"]) else 1)' "$VML_TMP/out"

if command -v gnuplot >/dev/null; then
    vml_run "${BENCH[@]}" --plot "$VML_TMP/latency.png" latency 10
    expect_rc 0 "--plot exits 0"
    tap_check "--plot writes a PNG" bash -c '[ "$(head -c 4 "$1" | od -An -tx1 | tr -d " ")" = 89504e47 ]' _ "$VML_TMP/latency.png"
else
    tap_skip "--plot" "gnuplot is not installed (Debian package gnuplot-nox)"
fi

# Usage errors: exit 2 and a message naming the problem.
vml_run "${BENCH[@]}" bogus 1
expect_rc 2 "an unknown mode is a usage error"
expect_text err "unknown mode 'bogus'" "... naming the mode"
vml_run "${BENCH[@]}" latency 0
expect_rc 2 "latency 0 is a usage error"
vml_run "${BENCH[@]}" disks 1,x
expect_rc 2 "a bad disks list is a usage error"
expect_text err "'x' is not a number of disks" "... naming the bad item"
vml_run "$VMLOCK_BENCH" --vs "$VMLOCK_PLUGIN" latency 1
expect_rc 2 "--vs without :CONFIG is a usage error"
vml_run "$VMLOCK_BENCH" --pidfile "$VML_TMP/nonexistent.pid" latency 1
expect_rc 1 "a missing pid file fails"
expect_text err "nonexistent.pid" "... naming the file"
tap_done
