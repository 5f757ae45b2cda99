#!/bin/bash
# vmlockctl_doctor.sh: "vmlockctl doctor": lockspace directories, filesystem and mount options (from a mount table), OFD locks, the daemon's sockets.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=e2e_lib.sh
. "$(dirname "$0")/e2e_lib.sh"
vml_require VMLOCKD VMLOCKCTL
vml_setup

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
LS=$VML_TMP/files
mkdir -m 0700 "$LS"
vml_plugin_config "$VML_TMP/indirect.conf" "file_lockspace_dir = \"$LS\""
CONF=$VML_PLUGIN_CONF

doctor() {
    vml_run "$VMLOCKCTL" --socket "$VML_ADMIN_SOCK" "$@"
}

# result CHECK SUBJECT: the status of one check of the last --json doctor output.
result() {
    "$VML_PYTHON" -c '
import json, sys
doc = json.loads(sys.argv[1])
print(",".join(c["status"] for c in doc["checks"]
               if c["check"] == sys.argv[2] and c["subject"] == sys.argv[3]) or "absent")
' "$VML_OUT" "$1" "$2"
}

expect_result() {
    local got
    got=$(result "$1" "$2")
    if [ "$got" = "$3" ]; then
        tap_ok "doctor: '$1' of $2 is $3"
    else
        tap_not_ok "doctor: '$1' of $2 is $3"
        diag "got: $got"
        vml_show_last
    fi
}

# mountinfo FSTYPE SOURCE SUPER_OPTIONS: a mount table where $LS is a mount of that kind.
mountinfo() {
    cp /proc/self/mountinfo "$VML_TMP/mountinfo"
    echo "999 1 0:999 / $LS rw,relatime - $1 $2 $3" >>"$VML_TMP/mountinfo"
    export VMLOCKCTL_MOUNTINFO=$VML_TMP/mountinfo
}

# ---------------------------------------------------------------- a healthy host

doctor --config "$CONF" doctor
expect_rc 0 "doctor: a local lockspace, a running daemon: exit 0"
expect_text out "ok   OFD locks: $LS: a lock taken in one process is seen and refused in another" \
    "doctor: OFD locks work in the lockspace (child holds, parent is refused, exit releases)"
expect_text out "ok   main socket: $VML_SOCK: accepts connections" "doctor: the plugin's socket answers"
expect_text out "ok   admin socket: $VML_ADMIN_SOCK: vmlockd " "doctor: the admin socket answers STATUS"
diag "$VML_OUT"
leftovers=$(find "$LS" -mindepth 1 | wc -l)
tap_check "doctor leaves nothing behind in the lockspace" test "$leftovers" -eq 0

doctor --config "$CONF" --json doctor "$VML_TMP"
expect_rc 0 "doctor --json with an extra directory: exit 0"
tap_check "doctor --json: valid JSON with ok=true" \
    test "$("$VML_PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])["ok"])' "$VML_OUT")" = True
expect_result "OFD locks" "$VML_TMP" ok
expect_result "filesystem" "$LS" ok

# ---------------------------------------------------------------- mount options that break locking

mountinfo nfs srv:/export rw,vers=3,nolock,addr=10.0.0.1
doctor --config "$CONF" --json doctor
expect_rc 3 "doctor: NFS mounted with nolock fails (exit 3)"
expect_result "mount options" "$LS" fail
tap_check "doctor: ... and says why" grep -q "mounted with 'nolock'" <<<"$VML_OUT"

mountinfo nfs4 srv:/export rw,vers=4.2,local_lock=posix
doctor --config "$CONF" doctor
expect_rc 3 "doctor: NFS with local_lock=posix fails (exit 3)"
expect_text out "FAIL mount options: $LS: nfs4 from srv:/export is mounted with 'local_lock=posix'" \
    "doctor: ... naming the option"

mountinfo nfs4 srv:/export rw,vers=4.2,local_lock=none
doctor --config "$CONF" --json doctor
expect_rc 0 "doctor: NFSv4.2 with local_lock=none passes"
expect_result "filesystem" "$LS" ok

mountinfo nfs srv:/export rw,vers=3,local_lock=none
doctor --config "$CONF" --json doctor
expect_rc 0 "doctor: NFSv3 only warns (exit 0)"
expect_result "mount options" "$LS" warn

mountinfo fuse.glusterfs gluster1:/vol rw,user_id=0,group_id=0,allow_other
doctor --config "$CONF" --json doctor
expect_result "filesystem" "$LS" warn
tap_check "doctor: GlusterFS advice names client.strict-locks" grep -q "client.strict-locks" <<<"$VML_OUT"

mountinfo fuse.sshfs me@host:/srv rw,user_id=0
doctor --config "$CONF" --json doctor
expect_rc 3 "doctor: sshfs (no lock forwarding) fails"
expect_result "filesystem" "$LS" fail

mountinfo cifs //srv/share rw,vers=3.0,nobrl
doctor --config "$CONF" --json doctor
expect_result "mount options" "$LS" fail
unset VMLOCKCTL_MOUNTINFO

# ---------------------------------------------------------------- missing or wrong directories, tools

vml_plugin_config "$VML_TMP/missing.conf" "file_lockspace_dir = \"$VML_TMP/not-yet\""
doctor --config "$VML_TMP/missing.conf" --json doctor
expect_rc 0 "doctor: a lockspace directory that does not exist yet only warns"
expect_result "exists" "$VML_TMP/not-yet" warn
expect_result "filesystem" "$VML_TMP/not-yet" ok
tap_check "doctor did not create the missing directory" test ! -e "$VML_TMP/not-yet"

: >"$VML_TMP/a-file"
vml_plugin_config "$VML_TMP/file.conf" "file_lockspace_dir = \"$VML_TMP/a-file\""
doctor --config "$VML_TMP/file.conf" --json doctor
expect_rc 3 "doctor: a lockspace that is a file fails"
expect_result "exists" "$VML_TMP/a-file" fail

vml_plugin_config "$VML_TMP/lvm.conf" "lvm_lockspace_dir = \"$LS\""
VMLOCKCTL_LVS=$VML_TMP/no-lvs doctor --config "$VML_TMP/lvm.conf" --json doctor
expect_rc 3 "doctor: lvm_lockspace_dir without a runnable lvs fails"
expect_result "program" "$VML_TMP/no-lvs" fail

# A read-only lockspace (a read-only bind mount in a private mount namespace).
if unshare --mount --propagation private true 2>/dev/null; then
    # shellcheck disable=SC2016  # expanded by the inner sh
    unshare --mount --propagation private -- sh -c \
        'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2" --socket "$3" --config "$4" --json doctor' \
        sh "$LS" "$VMLOCKCTL" "$VML_ADMIN_SOCK" "$CONF" >"$VML_TMP/ro.out" 2>"$VML_TMP/ro.err"
    VML_RC=$?
    VML_OUT=$(cat "$VML_TMP/ro.out")
    VML_ERR=$(cat "$VML_TMP/ro.err")
    expect_rc 3 "doctor: a read-only lockspace fails"
    expect_result "writable" "$LS" fail
else
    skip_point "doctor: a read-only lockspace fails" "no private mount namespace here"
fi

# ---------------------------------------------------------------- config and daemon problems

printf 'file_lockspace_dir = 42\n' >"$VML_TMP/bad.conf"
doctor --config "$VML_TMP/bad.conf" doctor
expect_rc 3 "doctor: a bad plugin config fails"
expect_text out "FAIL plugin config: $VML_TMP/bad.conf: " "doctor: ... with the parser's error"
expect_text out "$VML_TMP/bad.conf:1" "doctor: ... naming FILE:LINE"

vml_daemon_stop
doctor --config "$CONF" doctor
expect_rc 3 "doctor: a stopped daemon fails"
expect_text out "FAIL main socket: $VML_SOCK" "doctor: ... on the main socket"
expect_text out "FAIL admin socket: $VML_ADMIN_SOCK" "doctor: ... and the admin socket"

vml_run "$VMLOCKCTL" doctor ""
expect_rc 2 "doctor with an empty directory name is a usage error"

tap_done
