#!/bin/bash
# handover_refused.sh: a handover that does not parse or verify is a loud failure (exit 1, logged, nothing served), never a silent empty start.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=lt-lib.sh
. "$(dirname "$0")/lt-lib.sh"
lt_require
lt_setup

vml_daemon_config vmlockd
PIDFILE=$VML_TMP/handover.pid
VML_DAEMON_PIDFILES+=("$PIDFILE")

vml_daemon_run -f "$VML_DAEMON_CONF" -p "$PIDFILE" --handover-fd
expect_rc 1 "--handover-fd without a value is a usage error"
expect_text err "needs an argument" "... saying so"
vml_daemon_run -f "$VML_DAEMON_CONF" -p "$PIDFILE" --handover-fd 2
expect_rc 1 "--handover-fd naming a standard stream is refused"
expect_text err "invalid --handover-fd '2'" "... naming the value"

vml_daemon_run -f "$VML_DAEMON_CONF" -p "$PIDFILE" --handover-fd 63
expect_rc 1 "a handover descriptor that is not open: exit 1"
expect_text err "handover failed" "... loudly on stderr"
tap_check "... and in the log" grep -q "HANDOVER FAILED" "$VML_DAEMON_LOG"
tap_check "... and nothing was served" test ! -e "$VML_SOCK"

head -c 3000 /dev/urandom >"$VML_TMP/garbage"
vml_run $VMLOCKD_WRAPPER "$VMLOCKD" -f "$VML_DAEMON_CONF" -p "$PIDFILE" --handover-fd 7 7<"$VML_TMP/garbage"
expect_rc 1 "a handover that does not decode: exit 1"
expect_text err "handover failed" "... loudly"
tap_check "... and nothing was served" test ! -e "$VML_SOCK"

printf 'VMLH' >"$VML_TMP/short"
vml_run $VMLOCKD_WRAPPER "$VMLOCKD" -f "$VML_DAEMON_CONF" -p "$PIDFILE" --handover-fd 7 7<"$VML_TMP/short"
expect_rc 1 "a truncated handover: exit 1"
expect_text err "does not decode" "... saying it does not decode"
tap_done
