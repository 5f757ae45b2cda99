#!/bin/bash
# socket_activation.sh: vmlockd started with systemd's LISTEN_FDS serves on the sockets it was given (by vmlockd's or virtlockd's unit names, or by position) and binds none of its configured paths; activation input that names more sockets than it passes is refused.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCKD VMLOCK_HOST VMLOCK_PLUGIN VMLOCKCTL VMLOCK_STUB_QEMU
vml_setup

U1=aaaaaaaa-aaaa-4aaa-8aaa-0000000000a1
IMG=$VML_TMP/disk.img
vml_image "$IMG"

# activated NAME LISTEN_FDNAMES [LISTEN_FDS]: run `vmlockd -d` of config NAME as systemd
# would: its two sockets ($VML_TMP/NAME-act and NAME-act-admin) bound and listening as
# descriptors 3 and 4, LISTEN_PID its own pid (exec keeps it).  An empty LISTEN_FDNAMES
# is left unset.  Sets ACT_SOCK, ACT_ADMIN; the exit status is vmlockd's.
activated() {
    local name=$1 names=$2 nfds=${3:-2}
    ACT_SOCK=$VML_TMP/$name-act
    ACT_ADMIN=$VML_TMP/$name-act-admin
    VML_DAEMON_PIDFILES+=("$VML_DAEMON_PIDFILE")
    VML_DAEMON_ADMIN[$VML_DAEMON_PIDFILE]=$ACT_ADMIN
    "$VML_PYTHON" - "$ACT_SOCK" "$ACT_ADMIN" "$names" "$nfds" "$VMLOCKD_WRAPPER" "$VMLOCKD" -d \
        -f "$VML_DAEMON_CONF" -p "$VML_DAEMON_PIDFILE" >"$VML_TMP/act.out" 2>&1 </dev/null <<'EOF'
import os, socket, sys
main_path, admin_path, names, nfds, wrapper = sys.argv[1:6]
cmd = wrapper.split() + sys.argv[6:]
socks = []
for path in (main_path, admin_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o600)
    s.listen(16)
    socks.append(s)
# Moved clear of 3 and 4 first, so that no dup2 clobbers the other socket.
high = [os.dup(s.fileno()) + 100 for s in socks]
for s, h in zip(socks, high):
    os.dup2(s.fileno(), h)
for target, h in zip((3, 4), high):
    os.dup2(h, target)
    os.set_inheritable(target, True)
    os.close(h)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = nfds
if names:
    os.environ["LISTEN_FDNAMES"] = names
else:
    os.environ.pop("LISTEN_FDNAMES", None)
os.execvp(cmd[0], cmd)
EOF
    local rc=$?
    # check.sh's valgrind pass judges descriptor leaks of the daemons that ran their loop.
    if [ "$rc" -eq 0 ] && [ -n "${VML_DAEMON_PIDS_LOG:-}" ]; then
        { cat "$VML_DAEMON_PIDFILE"; echo; } >>"$VML_DAEMON_PIDS_LOG"
    fi
    return "$rc"
}

# ---- virtlockd's unit names (the virtlockd replacement drop-in)
vml_daemon_config virt
CONF_SOCK=$VML_SOCK
CONF_ADMIN=$VML_ADMIN_SOCK
activated virt "virtlockd.socket:virtlockd-admin.socket"
tap_check "vmlockd -d starts on sockets named virtlockd.socket and virtlockd-admin.socket" \
    test $? -eq 0 || diag "$(cat "$VML_TMP/act.out")"
vml_run "$VMLOCKCTL" --socket "$ACT_ADMIN" status
expect_rc 0 "the admin requests are served on the activated admin socket"
vml_plugin_config "$VML_TMP/plugin.conf"
sed -i "s|^unix_sock_path = .*|unix_sock_path = \"$ACT_SOCK\"|" "$VML_TMP/plugin.conf"
vml_guest_start vm1 "$U1" --disk "$IMG" && P1=$VML_GUEST_PID || P1=none
VML_ADMIN_SOCK=$ACT_ADMIN
expect_lease "the lock requests are served on the activated main socket" "pids=,$P1,"
tap_check "neither configured socket path is bound" test ! -e "$CONF_SOCK" -a ! -e "$CONF_ADMIN"
vml_guest_kill "$P1"
tap_check "the activated daemon stops on SIGTERM once its guest is gone" vml_daemon_stop

# ---- no names: by position, main then admin
vml_daemon_config positional
activated positional ""
tap_check "vmlockd -d starts on two unnamed activation sockets" test $? -eq 0
vml_run "$VMLOCKCTL" --socket "$ACT_ADMIN" status
expect_rc 0 "the second one is the admin socket"
tap_check "it stops on SIGTERM" vml_daemon_stop

# ---- more names than descriptors
vml_daemon_config extra
activated extra "vmlockd.socket:vmlockd-admin.socket" 1
VML_RC=$?
VML_OUT=""
VML_ERR=$(cat "$VML_TMP/act.out")
expect_rc 1 "LISTEN_FDNAMES naming more sockets than LISTEN_FDS=1 is refused"
expect_text err "LISTEN_FDNAMES 'vmlockd.socket:vmlockd-admin.socket' names more sockets than LISTEN_FDS=1" \
    "... saying so"
tap_check "... and nothing was started" test ! -s "$VML_DAEMON_PIDFILE"
tap_done
