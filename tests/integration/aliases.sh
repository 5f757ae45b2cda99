#!/bin/bash
# aliases.sh: a symlink or hard link to a locked image is the same disk: refused in direct mode, the same lease in indirect mode.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCKD VMLOCK_HOST VMLOCKCTL VMLOCK_PLUGIN
vml_setup

uuid() { printf '77777777-7777-4777-8777-%012d' "$1"; }

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
IMG=$VML_TMP/images/disk.img
mkdir -p "$VML_TMP/images" "$VML_TMP/links"
vml_image "$IMG"
ln -s "$IMG" "$VML_TMP/links/sym.img"
ln "$IMG" "$VML_TMP/links/hard.img"
SPELLED=$VML_TMP/links/../images//disk.img

# Direct mode: the daemon's OFD lock is on the inode, whatever path names it.
vml_plugin_config "$VML_TMP/direct.conf"
vml_guest_start vm1 "$(uuid 1)" --disk "$IMG" && P1=$VML_GUEST_PID || P1=none
vml_guest_refused vm2 "$(uuid 2)" --disk "$VML_TMP/links/sym.img" -- \
    "error: resource busy: Lockspace resource '" "is locked by domain 'vm1' (uuid $(uuid 1), pid $P1)"
vml_guest_refused vm3 "$(uuid 3)" --disk "$VML_TMP/links/hard.img" -- \
    "error: resource busy: Lockspace resource '$VML_TMP/links/hard.img'" \
    "is locked by domain 'vm1' (uuid $(uuid 1), pid $P1)"
vml_guest_refused vm4 "$(uuid 4)" --disk "$SPELLED" -- \
    "error: resource busy:" "is locked by domain 'vm1' (uuid $(uuid 1), pid $P1)"
expect_no_lease "no refused alias holds a lease" ",vm2,"
tap_check "vm1 is killed" vml_guest_kill "$P1"
vml_guest_start vm3 "$(uuid 3)" --disk "$VML_TMP/links/hard.img"

# Indirect mode: the lease is named after the canonical path, so the symlink maps to it.
LS=$VML_TMP/lockspace
IMG2=$VML_TMP/images/indirect.img
vml_image "$IMG2"
ln -s "$IMG2" "$VML_TMP/links/sym2.img"
HASH=$(vml_lease_name "$IMG2")
vml_plugin_config "$VML_TMP/indirect.conf" "file_lockspace_dir = \"$LS\""
vml_guest_start vm5 "$(uuid 5)" --disk "$IMG2" && P5=$VML_GUEST_PID || P5=none
vml_guest_refused vm6 "$(uuid 6)" --disk "$VML_TMP/links/sym2.img" -- \
    "error: resource busy: Lockspace resource '$HASH' (disk '$VML_TMP/links/sym2.img')" \
    "is locked by domain 'vm5' (uuid $(uuid 5), pid $P5)"
tap_check "the lockspace holds exactly one lease file" test "$(find "$LS" -type f | wc -l)" -eq 1
tap_done
