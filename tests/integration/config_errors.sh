#!/bin/bash
# config_errors.sh: bad daemon or plugin configuration is refused with an error naming FILE:LINE, and grants nothing.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCKD VMLOCK_HOST VMLOCK_PLUGIN
vml_setup

U1=aaaaaaaa-aaaa-4aaa-8aaa-000000000001

# A good config: --test-config prints the effective settings.
vml_daemon_config good
vml_daemon_run --test-config -f "$VML_DAEMON_CONF"
expect_rc 0 "--test-config accepts a good config"
expect_text out "unix_sock_path = \"$VML_SOCK\"" "--test-config prints the socket path it would use"
tap_check "--test-config starts nothing" test ! -e "$VML_SOCK"

# An unknown key.
vml_daemon_config badkey "bogus_key = 1"
LINE=$(grep -n bogus_key "$VML_DAEMON_CONF" | cut -d: -f1)
vml_daemon_run --test-config -f "$VML_DAEMON_CONF"
expect_rc 1 "--test-config refuses an unknown key"
expect_text err "$VML_DAEMON_CONF:$LINE" "the error names FILE:LINE"
expect_text err "bogus_key" "the error names the key"

# Out-of-range and wrong-type values.
vml_daemon_config badrange "max_clients = 0"
LINE=$(grep -n max_clients "$VML_DAEMON_CONF" | cut -d: -f1)
vml_daemon_run --test-config -f "$VML_DAEMON_CONF"
expect_rc 1 "--test-config refuses max_clients = 0"
expect_text err "$VML_DAEMON_CONF:$LINE" "the range error names FILE:LINE"
vml_daemon_config badtype "owner_kill_grace_ms = \"soon\""
LINE=$(grep -n owner_kill_grace_ms "$VML_DAEMON_CONF" | cut -d: -f1)
vml_daemon_run --test-config -f "$VML_DAEMON_CONF"
expect_rc 1 "--test-config refuses a string for a number"
expect_text err "$VML_DAEMON_CONF:$LINE" "the type error names FILE:LINE"

# A syntax error, and a daemon asked to start on it: exit 1 with the error, nothing left running.
vml_daemon_config syntax "max_clients = = 3"
LINE=$(grep -n '= = 3' "$VML_DAEMON_CONF" | cut -d: -f1)
VML_DAEMON_PIDFILES+=("$VML_DAEMON_PIDFILE")
vml_daemon_run -d -f "$VML_DAEMON_CONF" -p "$VML_DAEMON_PIDFILE"
expect_rc 1 "vmlockd -d refuses a config with a syntax error"
expect_text err "$VML_DAEMON_CONF:$LINE" "vmlockd -d prints the error naming FILE:LINE"
tap_check "no daemon was left listening" test ! -e "$VML_SOCK"
vml_daemon_run -f "$VML_TMP/missing.conf" --test-config
expect_rc 1 "an explicit config file that does not exist is an error"
expect_text err "$VML_TMP/missing.conf" "the error names the missing file"
vml_daemon_run --no-such-option
expect_rc 1 "an unknown command-line option is refused"
expect_text err "no-such-option" "the error names the option"

# The plugin: a bad key or value fails drvInit naming FILE:LINE, and no guest starts.
vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
IMG=$VML_TMP/disk.img
vml_image "$IMG"
vml_plugin_config "$VML_TMP/bad-plugin.conf" "auto_disk_leases = 2"
LINE=$(grep -n auto_disk_leases "$VML_PLUGIN_CONF" | cut -d: -f1)
vml_host start --name vm1 --uuid "$U1" --disk "$IMG"
expect_rc 1 "vmlock-host refuses to start with a plugin config error"
expect_text err "$VML_PLUGIN_CONF:$LINE" "the plugin error names FILE:LINE"
tap_check "no guest was started" test -z "$VML_GUEST_PID"
vml_plugin_config "$VML_TMP/bad-plugin2.conf" "lockspace_dir = \"/x\""
LINE=$(grep -n lockspace_dir "$VML_PLUGIN_CONF" | cut -d: -f1)
vml_host start --name vm1 --uuid "$U1" --disk "$IMG"
expect_rc 1 "an unknown plugin key is refused"
expect_text err "$VML_PLUGIN_CONF:$LINE" "the unknown-key error names FILE:LINE"
vml_plugin_config "$VML_TMP/bad-plugin3.conf" "file_lockspace_dir = \"relative/dir\""
LINE=$(grep -n file_lockspace_dir "$VML_PLUGIN_CONF" | cut -d: -f1)
vml_host start --name vm1 --uuid "$U1" --disk "$IMG"
expect_rc 1 "a relative lockspace directory is refused"
expect_text err "$VML_PLUGIN_CONF:$LINE" "the path error names FILE:LINE"

# With the plugin config fixed, the same guest starts.
vml_plugin_config "$VML_TMP/plugin.conf"
vml_guest_start vm1 "$U1" --disk "$IMG"
tap_done
