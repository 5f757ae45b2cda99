#!/bin/bash
# persistent-conn.sh: the persistent libvirtd -> vmlockd connection (vmlockd.so now) against the
# plugin of one connection per call (the previous build's vmlockd.so), each with its own vmlockd,
# interleaved with the floor daemon; then each plugin beside the floor only.
#
#   VML_BUILD_DIR=/tmp/b-conn OLD_PLUGIN=/path/to/old/vmlockd.so docs/perf/persistent-conn.sh OUTDIR RUN
#
# OLD_PLUGIN must be a copy at another path (one path is one dlopen copy).  Writes
# OUTDIR/three-RUN.{txt,json}, OUTDIR/floor-a-RUN.* (persistent) and floor-b-RUN.* (per call).
# The old plugin was built from the tree before the change:
#   git archive HEAD | tar -x -C /tmp/old-src && meson setup /tmp/old /tmp/old-src \
#     -Dbuildtype=debugoptimized && ninja -C /tmp/old driver/vmlockd.so
# Nothing here is a test: the figures are reported, never compared with bounds.
set -u
B=${VML_BUILD_DIR:?}; OLD=${OLD_PLUGIN:?}; P=${1:?OUTDIR}; R=${2:-1}
W=$P/w$R; rm -rf "$W"; mkdir -p "$W/work"
for x in a b; do
  printf 'unix_sock_path = "%s"\nadmin_unix_sock_path = "%s"\nlog_outputs = "3:file:%s"\n' \
    "$W/$x-sock" "$W/$x-admin" "$W/$x.log" > "$W/$x.conf"
  "$B/daemon/vmlockd" -d -f "$W/$x.conf" -p "$W/$x.pid" </dev/null || exit 1
  echo "unix_sock_path = \"$W/$x-sock\"" > "$W/plugin-$x.conf"
done
"$B/tools/vmlock-bench" --plugin "$B/driver/vmlockd.so" --config "$W/plugin-a.conf" \
  --pidfile "$W/a.pid" --socket "$W/a-sock" --label persistent \
  --vs "$OLD:$W/plugin-b.conf" --vs-pidfile "$W/b.pid" --vs-socket "$W/b-sock" --vs-label per-call \
  --floor --stub "$B/tools/vmlock-stub-qemu" --workdir "$W/work" --json-out "$P/three-$R.json" \
  latency 5000 > "$P/three-$R.txt" 2>&1
for x in a b; do
  so=$B/driver/vmlockd.so; [ $x = b ] && so=$OLD
  "$B/tools/vmlock-bench" --plugin "$so" --config "$W/plugin-$x.conf" --pidfile "$W/$x.pid" \
    --label vmlockd-$x --floor --stub "$B/tools/vmlock-stub-qemu" --workdir "$W/work" \
    --json-out "$P/floor-$x-$R.json" latency 5000 > "$P/floor-$x-$R.txt" 2>&1
done
for x in a b; do kill "$(cat "$W/$x.pid")"; done
