#!/bin/bash
# startup_options.sh: the daemon's command line: --help, a relative --pid-file (resolved before daemonising, keeper socket derived from it), --verbose, bad options, and log_filters accepted but ignored.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCKD VMLOCKCTL
vml_setup

vml_daemon_run --help
expect_rc 0 "--help exits 0"
expect_text out "Usage: vmlockd [OPTION]..." "... printing the usage on stdout"
vml_daemon_run -h
expect_rc 0 "-h is --help"

vml_daemon_run -p ''
expect_rc 1 "an empty --pid-file is refused"
expect_text err "option '--pid-file' needs a file name, not ''" "... saying so"
vml_daemon_run -x
expect_rc 1 "an unknown short option is refused"
expect_text err "unknown option '-x'" "... naming it"
expect_text err "Try 'vmlockd --help'" "... pointing at --help"

# A relative pid file names a file in the directory vmlockd was started from, although the
# daemon changes to / when it detaches; the keeper socket is derived from it.
vml_daemon_config rel
sed -i 's/^log_level = 2$/log_level = 4/' "$VML_DAEMON_CONF"
cd "$VML_TMP" || bail_out "cd $VML_TMP"
vml_daemon_run -f "$VML_DAEMON_CONF" -p rel.pid --test-config
expect_rc 0 "--test-config with a relative --pid-file"
expect_text out "pid_file = \"$VML_TMP/rel.pid\"" "... resolves it against the current directory"
expect_text out "keeper_sock_path = \"$VML_TMP/rel.keeper-sock\"" \
    "... and derives the keeper socket from it"
expect_text out "log_level = 4" "without --verbose the configured log_level stands"
vml_daemon_run -f "$VML_DAEMON_CONF" -p rel.pid --verbose --test-config
expect_text out "log_level = 2" "--verbose lowers log_level to 2 (info)"

VML_DAEMON_PIDFILE=$VML_TMP/rel.pid
vml_daemon_start -v -p rel.pid || bail_out "vmlockd -d -p rel.pid starts"
cd / || bail_out "cd /"
PID=$(cat "$VML_TMP/rel.pid" 2>/dev/null)
tap_check "the daemon started with a relative pid file wrote $VML_TMP/rel.pid" \
    test -n "$PID" -a -d "/proc/${PID:-0}"
tap_check "... its keeper listens on the derived socket" test -S "$VML_TMP/rel.keeper-sock"
tap_check "... and --verbose made it log at info level" \
    grep -q "vmlockd .* started (pid $PID, privileged)" "$VML_DAEMON_LOG"
tap_check "it stops on SIGTERM, removing its pid file" vml_daemon_stop
tap_check "... (gone)" test ! -e "$VML_TMP/rel.pid"

# log_filters: a virtlockd.conf key, accepted and said to be ignored.
vml_daemon_config filters 'log_filters = "1:rpc 3:util"'
vml_daemon_start || bail_out "a daemon with log_filters starts"
tap_check "log_filters is accepted and logged as ignored" \
    grep -q "log_filters is accepted for virtlockd.conf compatibility and ignored" "$VML_DAEMON_LOG"
tap_check "that daemon stops" vml_daemon_stop
tap_done
