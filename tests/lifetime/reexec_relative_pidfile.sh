#!/bin/bash
# reexec_relative_pidfile.sh: a daemon started with a relative --pid-file keeps its keeper socket beside that pid file across a SIGUSR1 re-exec (the replayed command line is resolved in /), so a keeper restarted after the re-exec is the one a plain restart finds, and no lock is orphaned.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=lt-lib.sh
. "$(dirname "$0")/lt-lib.sh"
lt_require
lt_setup

IMG=$VML_TMP/disk.img
vml_image "$IMG"
LS=$VML_TMP/ls
RUN=$VML_TMP/run
mkdir "$RUN"
vml_daemon_config vmlockd
VML_DAEMON_PIDFILE=$RUN/rel.pid
KEEPER_SOCK=$RUN/rel.keeper-sock
cd "$RUN" || bail_out "cd $RUN"
vml_daemon_start -p rel.pid || bail_out "vmlockd -d -p rel.pid starts in $RUN"
cd / || bail_out "cd /"
lt_note_keeper
K1=$LT_KEEPER_PID
PID=$(vml_daemon_pid)
tap_check "its keeper listens beside the pid file" test -S "$KEEPER_SOCK"
vml_plugin_config "$VML_TMP/plugin.conf" "file_lockspace_dir = \"$LS\""
vml_guest_start vm1 4c000000-0000-4000-8000-000000000701 --disk "$IMG" && P1=$VML_GUEST_PID || P1=none

kill -USR1 "$PID"
tap_check "SIGUSR1 re-executes the daemon" test "$(lt_status reexecs)/$(lt_status pid)" = "1/$PID"
kill -KILL "$K1" && vml_wait_exit "$K1" 30
lt_note_keeper
K2=$LT_KEEPER_PID
tap_check "after the re-exec, a keeper that died is replaced (pid $K1 -> $K2)" \
    test "$K2" != 0 -a "$K2" != "$K1"
tap_check "... on the same socket beside the pid file" \
    lt_log_has "keeper pid $K2 at $KEEPER_SOCK is back: handing it 1 lease(s)"
tap_check "... not in / (where the replayed relative --pid-file points)" test ! -e /rel.keeper-sock

tap_check "the daemon is killed with SIGKILL" vml_daemon_crash
cd "$RUN" || bail_out "cd $RUN"
vml_daemon_start -p rel.pid || bail_out "a plain restart with -p rel.pid"
cd / || bail_out "cd /"
tap_check "the restart finds that keeper (pid $K2)" test "$(lt_status keeper_pid)" = "$K2"
tap_check "... and adopts vm1's lease" test "$(lt_status adopted)" = 1
expect_lease "vm1 holds its lease" "pids=,$P1,"
tap_done
