#!/bin/bash
# batch_undo.sh: a refused batch removes the shared lease file it created (nobody else holds it) and leaves the other domain's lease alone; a lease file whose owner record is torn is acquired, with a warning, starting its generations again; a foreign file is never written.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCKD VMLOCK_HOST VMLOCK_PLUGIN VMLOCKCTL VMLOCK_STUB_QEMU
vml_setup

uuid() { printf 'bbbbbbbb-bbbb-4bbb-8bbb-%012d' "$1"; }
LS=$VML_TMP/ls
for n in x s d f; do vml_image "$VML_TMP/$n.img"; done
lease() { echo "$LS/$(vml_lease_name "$VML_TMP/$1.img")"; }

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
vml_plugin_config "$VML_TMP/plugin.conf" "file_lockspace_dir = \"$LS\""
vml_guest_start vmX "$(uuid 1)" --disk "$VML_TMP/x.img" && PX=$VML_GUEST_PID || PX=none

# ---- a batch that fails on its second resource undoes the first, removing the file it made
tap_check "the shared disk's lease file does not exist yet" test ! -e "$(lease s)"
vml_guest_refused vmS "$(uuid 2)" --disk "$VML_TMP/s.img,shared" --disk "$VML_TMP/x.img" -- \
    "is locked by domain 'vmX'"
tap_check "the shared lease file the refused batch created is removed again" \
    test ! -e "$(lease s)"
expect_no_lease "... and vmS holds nothing" "domains=,vmS,"
expect_lease "vmX keeps its lease" "pids=,$PX,"
tap_check "vmX's lease file is kept" test -e "$(lease x)"

# ---- a torn owner record (our header, no end): acquired with a warning, generations restart
mkdir -p "$LS"
printf 'vmlockd-owner-record 1\nstate held\ngeneration 41\nhost elsewhere\n' >"$(lease d)"
vml_guest_start vmD "$(uuid 3)" --disk "$VML_TMP/d.img" && PD=$VML_GUEST_PID || PD=none
tap_check "the damaged record is logged" \
    grep -qF "the owner record of $(lease d) is damaged: starting its generations again" \
    "$VML_DAEMON_LOG"
tap_check "... and replaced by vmD's record (generation 1)" \
    grep -qE '^generation 1$' "$(lease d)"
tap_check "... naming vmD" grep -qE '^domain vmD$' "$(lease d)"

# ---- a file that is not ours at all is locked but never written
printf 'somebody else keeps notes here\n' >"$(lease f)"
vml_guest_start vmF "$(uuid 4)" --disk "$VML_TMP/f.img" && PF=$VML_GUEST_PID || PF=none
tap_check "a foreign lease file is left as it was" \
    test "$(cat "$(lease f)")" = "somebody else keeps notes here"
tap_check "vmF is stopped" vml_guest_kill "$PF"
# A request: the daemon handles the owner's exit before it (event order).
expect_no_lease "... and holds nothing" "pids=,$PF,"
tap_check "... and after the release the foreign file is still untouched" \
    test "$(cat "$(lease f)")" = "somebody else keeps notes here"
tap_check "vmD is stopped" vml_guest_kill "$PD"
expect_no_lease "... and holds nothing" "pids=,$PD,"
tap_check "... its record now says free, generation 1" \
    grep -qE '^state free$' "$(lease d)"
tap_done
