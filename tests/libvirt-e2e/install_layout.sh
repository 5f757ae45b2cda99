#!/bin/bash
# install_layout.sh: `meson install --destdir` into a temp dir puts every file where an admin expects it; the installed units, man pages and binaries work.
#
# Usage (meson passes these): install_layout.sh MESON BUILD_DIR PREFIX BINDIR SBINDIR SYSCONFDIR
#                                               MANDIR DATADIR LOCKDRIVERDIR
# Every directory is absolute (meson resolves them against the prefix).
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=e2e_lib.sh
. "$(dirname "$0")/e2e_lib.sh"

[ $# -eq 9 ] || { echo "usage: $0 MESON BUILD PREFIX BINDIR SBINDIR SYSCONFDIR MANDIR DATADIR LOCKDRIVERDIR" >&2; exit 2; }
MESON=$1 BUILD=$2 PREFIX=$3 BINDIR=$4 SBINDIR=$5 SYSCONFDIR=$6 MANDIR=$7 DATADIR=$8 LOCKDRIVERDIR=$9
vml_setup
D=$VML_TMP/destdir

if "$MESON" install -C "$BUILD" --no-rebuild --destdir "$D" >"$VML_TMP/install.log" 2>&1; then
    tap_ok "meson install --destdir $D"
else
    tap_not_ok "meson install --destdir"
    diag "$(tail -n 20 "$VML_TMP/install.log")"
    tap_done
fi

# The systemd unit directory: the one pkg-config's systemd names, else PREFIX/lib/systemd/system.
UNITDIR=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null)
[ -n "$UNITDIR" ] || UNITDIR=$PREFIX/lib/systemd/system

expect_file() {
    local path=$1 mode=$2 desc=$3
    if [ -f "$D$path" ] && { [ "$mode" != x ] || [ -x "$D$path" ]; }; then
        tap_ok "$desc: $path"
    else
        tap_not_ok "$desc: $path"
        diag "installed files: $(cd "$D" && find . -type f | sort | tr '\n' ' ')"
    fi
}

expect_file "$SBINDIR/vmlockd" x "the daemon is in sbin"
expect_file "$BINDIR/vmlockctl" x "vmlockctl is in bin"
expect_file "$LOCKDRIVERDIR/vmlockd.so" - "the plugin is in libvirt's lock-driver directory"
expect_file "$SYSCONFDIR/libvirt/vmlockd.conf" - "sample vmlockd.conf"
expect_file "$SYSCONFDIR/libvirt/qemu-vmlockd.conf" - "sample qemu-vmlockd.conf"
expect_file "$UNITDIR/vmlockd.socket" - "unit vmlockd.socket"
expect_file "$UNITDIR/vmlockd-admin.socket" - "unit vmlockd-admin.socket"
expect_file "$UNITDIR/vmlockd.service" - "unit vmlockd.service"
expect_file "$MANDIR/man8/vmlockd.8" - "man page vmlockd(8)"
expect_file "$MANDIR/man8/vmlockctl.8" - "man page vmlockctl(8)"
expect_file "$MANDIR/man5/vmlockd.conf.5" - "man page vmlockd.conf(5)"
expect_file "$MANDIR/man5/qemu-vmlockd.conf.5" - "man page qemu-vmlockd.conf(5)"
expect_file "$DATADIR/doc/vmlockd/admin-guide.md" - "the administrator's guide"
expect_file "$DATADIR/doc/vmlockd/examples/virtlockd-vmlockd.conf" - "the virtlockd drop-in example"

# Nothing installed outside the prefix except where a system directory says so.
stray=$(cd "$D" && find . -type f | sed 's|^\.||' | while read -r f; do
    case $f in
        "$PREFIX"/*|"$SYSCONFDIR"/*|"$UNITDIR"/*|"$LOCKDRIVERDIR"/*) ;;
        *) echo "$f" ;;
    esac
done)
tap_check "nothing is installed outside the prefix, sysconfdir, unit and lock-driver directories${stray:+ (stray: $stray)}" \
    test -z "$stray"

# ---------------------------------------------------------------- the installed programs

vml_run "$D$SBINDIR/vmlockd" --version
expect_text out "vmlockd" "the installed vmlockd runs (--version)"
vml_run "$D$BINDIR/vmlockctl" --help
expect_rc 0 "the installed vmlockctl runs (--help)"
if command -v readelf >/dev/null; then
    exported=$(readelf --dyn-syms -W "$D$LOCKDRIVERDIR/vmlockd.so" |
        awk '$5 == "GLOBAL" && $7 != "UND" { print $8 }' | sort -u | tr '\n' ' ')
    tap_check "the installed plugin exports virLockDriverImpl and nothing else ($exported)" \
        test "$exported" = "virLockDriverImpl "
else
    skip_point "the installed plugin exports only virLockDriverImpl" "readelf (binutils) is not installed"
fi
vml_run "$D$SBINDIR/vmlockd" --test-config -f "$D$SYSCONFDIR/libvirt/vmlockd.conf"
expect_rc 0 "the sample vmlockd.conf is valid (vmlockd --test-config)"
vml_run "$D$BINDIR/vmlockctl" --config "$D$SYSCONFDIR/libvirt/qemu-vmlockd.conf" \
    --socket "$VML_TMP/none" doctor
expect_text out "ok   plugin config: $D$SYSCONFDIR/libvirt/qemu-vmlockd.conf: direct" \
    "the sample qemu-vmlockd.conf is valid (all defaults: direct mode)"

# ---------------------------------------------------------------- units

SERVICE=$D$UNITDIR/vmlockd.service
tap_check "vmlockd.service starts the installed daemon ($SBINDIR/vmlockd)" \
    grep -qx "ExecStart=$SBINDIR/vmlockd \$VMLOCKD_ARGS" "$SERVICE"
tap_check "vmlockd.service is Type=notify" grep -qx "Type=notify" "$SERVICE"
tap_check "vmlockd.service reloads by re-exec (SIGUSR1)" grep -qx 'ExecReload=/bin/kill -USR1 $MAINPID' "$SERVICE"
tap_check "vmlockd.service keeps the keeper on stop (KillMode=process)" grep -qx "KillMode=process" "$SERVICE"
tap_check "vmlockd.service has OOMScoreAdjust=-900" grep -qx "OOMScoreAdjust=-900" "$SERVICE"
tap_check "the virtlockd drop-in starts $SBINDIR/vmlockd" \
    grep -qx "ExecStart=$SBINDIR/vmlockd \$VMLOCKD_ARGS" "$D$DATADIR/doc/vmlockd/examples/virtlockd-vmlockd.conf"
if command -v systemd-analyze >/dev/null; then
    # The host's own units (sysinit.target, ...) are needed, so the check runs against the
    # live unit path with copies whose ExecStart points into the destdir; man pages are not
    # installed on this host, so they are not looked up.
    mkdir -p "$VML_TMP/units"
    cp "$D$UNITDIR"/vmlockd.socket "$D$UNITDIR"/vmlockd-admin.socket "$VML_TMP/units/"
    sed "s|^ExecStart=$SBINDIR/|ExecStart=$D$SBINDIR/|" "$SERVICE" >"$VML_TMP/units/vmlockd.service"
    if systemd-analyze verify --man=no "$VML_TMP/units/vmlockd.socket" \
            "$VML_TMP/units/vmlockd-admin.socket" "$VML_TMP/units/vmlockd.service" \
            >"$VML_TMP/verify.out" 2>&1; then
        tap_ok "systemd-analyze verify accepts the three units"
    else
        tap_not_ok "systemd-analyze verify accepts the three units"
        diag "$(cat "$VML_TMP/verify.out")"
    fi
else
    skip_point "systemd-analyze verify accepts the three units" "systemd-analyze is not installed"
fi

# Socket activation exactly as the units describe it: the names come from the unit files.
fdname() { sed -n 's/^FileDescriptorName=//p' "$D$UNITDIR/$1"; }
MAIN_NAME=$(fdname vmlockd.socket)
ADMIN_NAME=$(fdname vmlockd-admin.socket)
if command -v systemd-socket-activate >/dev/null; then
    cat >"$VML_TMP/activated.conf" <<EOF
log_level = 2
log_outputs = "2:file:$VML_TMP/activated.log"
EOF
    # The service manager's side of NOTIFY_SOCKET: one line per datagram, through a FIFO (the
    # activator below is this script's one coprocess).
    mkfifo "$VML_TMP/notify.fifo"
    "$VML_PYTHON" -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "w")
print("bound", file=out, flush=True)
while True:
    print(s.recv(4096).decode(errors="replace").replace("\n", " "), file=out, flush=True)
' "$VML_TMP/notify" "$VML_TMP/notify.fifo" &
    VML_CHILD_PIDS+=("$!")
    exec {NOTIFY_OUT}<"$VML_TMP/notify.fifo"
    read -r -t 30 -u "$NOTIFY_OUT" line
    coproc ACTIVATOR {
        exec systemd-socket-activate -l "$VML_TMP/main-sock" -l "$VML_TMP/admin-sock" \
            --fdname="$MAIN_NAME:$ADMIN_NAME" -E NOTIFY_SOCKET="$VML_TMP/notify" \
            "$D$SBINDIR/vmlockd" -f "$VML_TMP/activated.conf" -p "$VML_TMP/activated.pid" 2>&1
    }
    ACT_PID=$ACTIVATOR_PID
    VML_CHILD_PIDS+=("$ACT_PID")
    # It says "Listening on ADDR as FD." for each socket before it waits for a connection.
    listening=0
    while [ "$listening" -lt 2 ] && read -r -t 30 -u "${ACTIVATOR[0]}" line; do
        [[ "$line" == Listening* ]] && listening=$((listening + 1))
    done
    tap_check "systemd-socket-activate listens on both sockets, named $MAIN_NAME and $ADMIN_NAME" \
        test "$listening" -eq 2
    vml_run "$D$BINDIR/vmlockctl" --socket "$VML_TMP/admin-sock" status
    expect_rc 0 "a connection to the admin socket starts vmlockd, which answers STATUS"
    read -r -t 30 -u "$NOTIFY_OUT" line
    tap_check "the activated daemon sent READY=1 to NOTIFY_SOCKET ('$line')" test "$line" = "READY=1"
    vml_run "$D$BINDIR/vmlockctl" --socket "$VML_TMP/admin-sock" --json status
    tap_check "... and it is the activated process (pid $ACT_PID)" \
        grep -q "\"pid\": $ACT_PID," <<<"$VML_OUT"
    kill -TERM "$ACT_PID"
    read -r -t 30 -u "$NOTIFY_OUT" line
    tap_check "SIGTERM: the daemon says STOPPING=1" test "$line" = "STOPPING=1"
    vml_wait_exit "$ACT_PID" 30
    wait "$ACT_PID"
    tap_check "... and exits 0" test $? -eq 0
else
    skip_point "socket activation with the units' descriptor names" "systemd-socket-activate is not installed"
fi

# ---------------------------------------------------------------- man pages render cleanly

for page in man8/vmlockd.8 man8/vmlockctl.8 man5/vmlockd.conf.5 man5/qemu-vmlockd.conf.5; do
    file=$D$MANDIR/$page
    warnings=$(groff -man -ww -z "$file" 2>&1)
    tap_check "groff -man -ww finds nothing to warn about in $page${warnings:+: $warnings}" \
        test -z "$warnings"
    if command -v man >/dev/null; then
        rendered=$(MANWIDTH=80 man -l "$file" 2>"$VML_TMP/man.err" | cat)
        tap_check "man -l renders $page (NAME section, no error)" \
            test -n "$rendered" -a ! -s "$VML_TMP/man.err" -a -n "$(grep -x 'NAME' <<<"$rendered")"
    else
        skip_point "man -l renders $page" "man-db is not installed"
    fi
done

tap_done
