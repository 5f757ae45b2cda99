#!/bin/bash
# shared_readonly.sh: shareable disks may be shared, never mixed with exclusive use; read-only disks are not locked at all.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCKD VMLOCK_HOST VMLOCKCTL VMLOCK_PLUGIN
vml_setup

uuid() { printf '22222222-2222-4222-8222-%012d' "$1"; }

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
vml_plugin_config "$VML_TMP/plugin.conf"
SHARED=$VML_TMP/shared.img
EXCL=$VML_TMP/exclusive.img
RO=$VML_TMP/readonly.img
RO2=$VML_TMP/readonly2.img
for img in "$SHARED" "$EXCL" "$RO" "$RO2"; do vml_image "$img"; done

# Two guests share a shareable disk.
vml_guest_start s1 "$(uuid 1)" --disk "$SHARED,shared" && PS1=$VML_GUEST_PID || PS1=none
vml_guest_start s2 "$(uuid 2)" --disk "$SHARED,shared" && PS2=$VML_GUEST_PID || PS2=none
expect_lease "the shared lease lists both guests" \
    "name=$SHARED disk=$SHARED mode=shared pids=,$PS1,$PS2, domains=,s1,s2,"

# Shared holders refuse an exclusive user ...
vml_guest_refused x1 "$(uuid 3)" --disk "$SHARED" -- \
    "error: resource busy: Lockspace resource '$SHARED'" "is locked by domain 's1'"

# ... and an exclusive holder refuses a shared user.
vml_guest_start x2 "$(uuid 4)" --disk "$EXCL"
vml_guest_refused s3 "$(uuid 5)" --disk "$EXCL,shared" -- \
    "error: resource busy: Lockspace resource '$EXCL'" "is locked by domain 'x2'"
expect_no_lease "the refused shared user was not added as a holder" ",s3,"

# Read-only disks: two read-only guests, and read-only beside an exclusive writer, all start.
vml_guest_start r1 "$(uuid 6)" --disk "$RO,readonly"
vml_guest_start r2 "$(uuid 7)" --disk "$RO,readonly"
expect_no_lease "read-only disks take no lease" "name=$RO "
vml_guest_start w1 "$(uuid 8)" --disk "$RO" && PW1=$VML_GUEST_PID || PW1=none
expect_lease "the writer beside read-only users holds the disk exclusively" \
    "name=$RO disk=$RO mode=exclusive pids=,$PW1,"
vml_guest_start w2 "$(uuid 9)" --disk "$RO2"
vml_guest_start r3 "$(uuid 10)" --disk "$RO2,readonly,shared"
tap_done
