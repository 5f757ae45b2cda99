#!/bin/bash
# vmlockctl_check.sh: "vmlockctl check DOMAIN.xml" against a real vmlockd holding leases for stand-in guests: file, shareable, readonly, block (LVM, SCSI), aliases, outside holders, bad input.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=e2e_lib.sh
. "$(dirname "$0")/e2e_lib.sh"
vml_require VMLOCKD VMLOCK_HOST VMLOCKCTL VMLOCK_PLUGIN
vml_setup

uuid() { printf 'cccccccc-cccc-4ccc-8ccc-%012d' "$1"; }
WEB_UUID=$(uuid 99)

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"

# A real block device for the direct-mode block disk, where the kernel gives us a loop device.
LOOP=""
if command -v losetup >/dev/null; then
    vml_image "$VML_TMP/loop-backing.img"
    LOOP=$(losetup --find --show "$VML_TMP/loop-backing.img" 2>"$VML_TMP/losetup.err") || LOOP=""
fi
# Detach it on every exit path, then run the library's cleanup with the script's status.
# shellcheck disable=SC2154  # vml_status is set inside the trap
trap 'vml_status=$?; [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null; (exit "$vml_status"); vml_cleanup' EXIT

EXCL=$VML_TMP/excl.img
SHARED=$VML_TMP/shared.img
RO=$VML_TMP/ro.img
OTHER=$VML_TMP/other.img
for img in "$EXCL" "$SHARED" "$RO" "$OTHER"; do vml_image "$img"; done
LS=$VML_TMP/files
LVM=$VML_TMP/lvmvolumes
SCSI=$VML_TMP/scsivolumes
LV_UUID=Fake1-LVUU-ID00-0000-0000-0000-000001
WWN=36001405deadbeef0000000000000001

# Stand-ins for /sbin/lvs and /lib/udev/scsi_id: they know one device each.
cat >"$VML_TMP/lvs" <<EOF
#!/bin/sh
for arg; do last=\$arg; done
[ "\$last" = /dev/vgtest/lv0 ] || exit 5
echo "  $LV_UUID"
EOF
cat >"$VML_TMP/scsi_id" <<EOF
#!/bin/sh
for arg; do last=\$arg; done
[ "\$last" = /dev/sdtest ] || exit 1
echo "$WWN"
EOF
chmod 0755 "$VML_TMP/lvs" "$VML_TMP/scsi_id"
export VMLOCKCTL_LVS=$VML_TMP/lvs VMLOCKCTL_SCSI_ID=$VML_TMP/scsi_id

vml_plugin_config "$VML_TMP/indirect.conf" "file_lockspace_dir = \"$LS\"" \
    "lvm_lockspace_dir = \"$LVM\"" "scsi_lockspace_dir = \"$SCSI\""
INDIRECT_CONF=$VML_PLUGIN_CONF
vml_plugin_config "$VML_TMP/direct.conf"
DIRECT_CONF=$VML_PLUGIN_CONF
VML_PLUGIN_CONF=$INDIRECT_CONF

# The domain under test: one disk of every kind the issue names, and the ones never locked.
cat >"$VML_TMP/web.xml" <<EOF
<domain type='qemu'>
  <name>web</name>
  <uuid>$WEB_UUID</uuid>
  <memory unit='MiB'>32</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$EXCL'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='$SHARED'/>
      <target dev='vdb' bus='virtio'/>
      <shareable/>
    </disk>
    <disk type='file' device='disk'>
      <source file='$RO'/>
      <target dev='vdc' bus='virtio'/>
      <readonly/>
    </disk>
    <disk type='block' device='disk'>
      <source dev='/dev/vgtest/lv0'/>
      <target dev='vdd' bus='virtio'/>
    </disk>
    <disk type='block' device='lun'>
      <source dev='/dev/sdtest'/>
      <target dev='sda' bus='scsi'/>
    </disk>
    <disk type='network' device='disk'>
      <source protocol='rbd' name='pool/image'/>
      <target dev='vde' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
  </devices>
</domain>
EOF

# check [vmlockctl options...]: run check on web.xml; output in VML_OUT/VML_ERR, exit in VML_RC.
check() {
    vml_run "$VMLOCKCTL" --socket "$VML_ADMIN_SOCK" "$@"
}

# field TARGET_OR_KEY FIELD: one field of an item of the last --json check output.
field() {
    "$VML_PYTHON" -c '
import json, sys
doc = json.loads(sys.argv[1])
for item in doc["items"]:
    if item.get("target") == sys.argv[2] or item.get("key") == sys.argv[2]:
        value = item[sys.argv[3]]
        if sys.argv[3] == "holders":
            value = ",".join(h["domain"] for h in value)
        print("null" if value is None else str(value).lower() if isinstance(value, bool) else value)
        break
else:
    print("no-such-item")
' "$VML_OUT" "$1" "$2"
}

# top FIELD: a top-level field of the last --json output.
top() {
    "$VML_PYTHON" -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$VML_OUT" "$1"
}

# expect_field TARGET FIELD WANT
expect_field() {
    local got
    got=$(field "$1" "$2")
    if [ "$got" = "$3" ]; then
        tap_ok "$1: $2 is $3"
    else
        tap_not_ok "$1: $2 is $3"
        diag "got: $got"
        vml_show_last
    fi
}

lease_of() { printf %s "$(realpath -m "$1")" | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- held by other guests

vml_guest_start vm1 "$(uuid 1)" --disk "$EXCL" && P1=$VML_GUEST_PID || P1=none
vml_guest_start s1 "$(uuid 2)" --disk "$SHARED,shared" || true

check --config "$INDIRECT_CONF" check "$VML_TMP/web.xml"
expect_rc 3 "check: web would not start while vm1 holds vda (exit 3)"
expect_text out "would this VM start? no: disk vda $EXCL is held by domain 'vm1' (uuid $(uuid 1), pid $P1)" \
    "check: the verdict names the holder of vda"
expect_text out "disk vdc $RO: not locked: read-only" "check: the read-only disk is not locked"
expect_text out "disk vde rbd:pool/image: not locked" "check: the network disk is not locked"
expect_text out "disk hdc: not locked: no source" "check: the empty CD-ROM is not locked"
diag "check output (indirect, vm1 and s1 running):"
diag "$VML_OUT"

check --config "$INDIRECT_CONF" --json check "$VML_TMP/web.xml"
expect_rc 3 "check --json: exit 3 too"
tap_check "check --json: valid JSON saying would_start=no" test "$(top would_start)" = no
expect_field vda how indirect
expect_field vda lease "$(lease_of "$EXCL")"
expect_field vda lockspace "$LS"
expect_field vda mode exclusive
expect_field vda state held
expect_field vda holders vm1
expect_field vda conflict true
expect_field vdb how indirect
expect_field vdb mode shared
expect_field vdb state held-shared
expect_field vdb holders s1
expect_field vdb conflict false
expect_field vdc locked false
expect_field vdc state not-locked
expect_field vdd how LVM
expect_field vdd lockspace "$LVM"
expect_field vdd lease "$LV_UUID"
expect_field vdd state free
expect_field sda how SCSI
expect_field sda lease "$WWN"
expect_field sda lockspace "$SCSI"
expect_field vde locked false
expect_field hdc locked false

# ---------------------------------------------------------------- the LVM lease taken by someone

coproc LVHOLDER {
    exec "$VML_PYTHON" "$VML_LIB_DIR/vml_rawclient.py" --socket "$VML_SOCK" \
        register lvguest 7 self "$(uuid 7)" acquire "$LVM" "$LV_UUID" 2 hold
}
VML_CHILD_PIDS+=("$LVHOLDER_PID")
LVHOLDER_OUT=${LVHOLDER[0]}
LVHOLDER_IN=${LVHOLDER[1]}
lines=""
for _ in 1 2 3; do
    read -r -t 30 -u "$LVHOLDER_OUT" line && lines+="$line;"
done
tap_check "a raw client holds the LV's lease ($lines)" test "$lines" = "ok;ok;ready;"
check --config "$INDIRECT_CONF" --json check "$VML_TMP/web.xml"
expect_field vdd state held
expect_field vdd holders lvguest
exec {LVHOLDER_IN}>&-
{ kill -KILL "$LVHOLDER_PID" && wait "$LVHOLDER_PID"; } 2>/dev/null

# ---------------------------------------------------------------- free once vm1 is gone

tap_check "vm1's stand-in QEMU is killed" vml_guest_kill "$P1"
check --config "$INDIRECT_CONF" check "$VML_TMP/web.xml"
expect_rc 0 "check: web would start once vm1 is gone and the LV is released (exit 0)"
expect_text out "would this VM start? yes" "check: the verdict is yes"
expect_text out "disk vdb $SHARED: indirect, shared, lease file $LS/$(lease_of "$SHARED"): held shared by domain 's1'" \
    "check: the shareable disk is held shared by s1, compatible"
check --config "$INDIRECT_CONF" --json check "$VML_TMP/web.xml"
expect_field vda state free
expect_field vdd state free

# web itself running: its own leases are not a conflict.
vml_guest_start web "$WEB_UUID" --disk "$EXCL" --disk "$SHARED,shared" && PW=$VML_GUEST_PID || PW=none
check --config "$INDIRECT_CONF" --json check "$VML_TMP/web.xml"
expect_rc 0 "check: a domain holding its own leases is not in conflict with itself"
expect_field vda state held-by-self
[ "$PW" != none ] && vml_guest_kill "$PW"

# Standard input (vml_run reads /dev/null, so run it directly).
"$VMLOCKCTL" --socket "$VML_ADMIN_SOCK" --config "$INDIRECT_CONF" check - <"$VML_TMP/web.xml" \
    >"$VML_TMP/stdin.out" 2>&1
tap_check "check - reads the definition from standard input" \
    grep -q "would this VM start? yes" "$VML_TMP/stdin.out"

# ---------------------------------------------------------------- direct mode, aliases, outsiders

VML_PLUGIN_CONF=$DIRECT_CONF
vml_guest_start vm3 "$(uuid 3)" --disk "$OTHER"
ln -s "$OTHER" "$VML_TMP/alias.img"
cat >"$VML_TMP/direct.xml" <<EOF
<domain type='kvm'>
  <name>direct</name>
  <uuid>$(uuid 98)</uuid>
  <devices>
    <disk type='file' device='disk'><source file='$OTHER'/><target dev='vda'/></disk>
    <disk type='file' device='disk'><source file='$VML_TMP/alias.img'/><target dev='vdb'/></disk>
    <disk type='file' device='disk'><source file='$EXCL'/><target dev='vdc'/></disk>
    <disk type='file' device='disk'><source file='$VML_TMP/missing.img'/><target dev='vdd'/></disk>
  </devices>
</domain>
EOF
# vdc: an OFD lock outside any vmlockd (another process), exactly where the daemon locks.
coproc OUTSIDER {
    exec "$VML_PYTHON" -c '
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 1, 0))
print("locked", flush=True)
sys.stdin.read()
' "$EXCL"
}
VML_CHILD_PIDS+=("$OUTSIDER_PID")
OUTSIDER_OUT=${OUTSIDER[0]}
OUTSIDER_IN=${OUTSIDER[1]}
read -r -t 30 -u "$OUTSIDER_OUT" line
tap_check "another process holds an OFD lock on byte 0 of $EXCL" test "$line" = locked
check --config "$DIRECT_CONF" --json check "$VML_TMP/direct.xml"
expect_rc 3 "check (direct): would not start (exit 3)"
expect_field vda how direct
expect_field vda lockspace ""
expect_field vda lease "$OTHER"
expect_field vda state held
expect_field vda holders vm3
expect_field vdb state held
expect_field vdb through "$OTHER"
expect_field vdc state held-outside
expect_field vdd state refused
check --config "$DIRECT_CONF" check "$VML_TMP/direct.xml"
expect_text out "disk vdb $VML_TMP/alias.img: direct, exclusive, lock on the disk itself: HELD exclusively by domain 'vm3'" \
    "check (direct): a symlink to a held image is reported as held by its holder"
expect_text out "(the same file as lease '$OTHER')" "check (direct): ... naming the lease it aliases"
expect_text out "disk vdc $EXCL: direct, exclusive, lock on the disk itself: HELD by another process or host" \
    "check (direct): a lock outside vmlockd is reported"
expect_text out "disk vdd $VML_TMP/missing.img: REFUSED by the plugin: $VML_TMP/missing.img does not exist" \
    "check (direct): a missing image is refused"
diag "check output (direct mode):"
diag "$VML_OUT"
exec {OUTSIDER_IN}>&-
vml_wait_exit "$OUTSIDER_PID" 30

# A block device, locked directly by its node.
if [ -n "$LOOP" ]; then
    vml_guest_start vm4 "$(uuid 4)" --disk "$LOOP" && P4=$VML_GUEST_PID || P4=none
    cat >"$VML_TMP/block.xml" <<EOF
<domain><name>blk</name><uuid>$(uuid 97)</uuid><devices>
  <disk type='block' device='disk'><source dev='$LOOP'/><target dev='vda'/></disk>
</devices></domain>
EOF
    check --config "$DIRECT_CONF" --json check "$VML_TMP/block.xml"
    expect_rc 3 "check (direct): a block device held by vm4 would not start"
    expect_field vda type block
    expect_field vda how direct
    expect_field vda lease "$LOOP"
    expect_field vda state held
    expect_field vda holders vm4
    [ "$P4" != none ] && vml_guest_kill "$P4"
    check --config "$DIRECT_CONF" --json check "$VML_TMP/block.xml"
    expect_rc 0 "check (direct): the block device is free once vm4 is gone"
    check --config "$INDIRECT_CONF" --json check "$VML_TMP/block.xml"
    expect_field vda how indirect
    expect_field vda lease "$(lease_of "$LOOP")"
else
    skip_point "check (direct) on a real block device" \
        "no loop device here: $(cat "$VML_TMP/losetup.err" 2>/dev/null)"
fi

# ---------------------------------------------------------------- auto_disk_leases = 0, refusals

vml_plugin_config "$VML_TMP/noauto.conf" "auto_disk_leases = 0"
check --config "$VML_TMP/noauto.conf" check "$VML_TMP/web.xml"
expect_rc 3 "check (auto_disk_leases = 0): a writable disk without <lease> is refused (exit 3)"
expect_text out "Read/write, exclusive access, disks were present, but no leases specified" \
    "check (auto_disk_leases = 0): the plugin's own refusal is quoted"
vml_plugin_config "$VML_TMP/noauto-norequire.conf" "auto_disk_leases = 0" "require_lease_for_disks = 0"
check --config "$VML_TMP/noauto-norequire.conf" check "$VML_TMP/web.xml"
expect_rc 0 "check (auto_disk_leases = 0, require_lease_for_disks = 0): nothing locked, would start"

cat >"$VML_TMP/relative.xml" <<'EOF'
<domain><name>rel</name><devices>
  <disk type='file'><source file='images/relative.img'/><target dev='vda'/></disk>
</devices></domain>
EOF
check --config "$INDIRECT_CONF" check "$VML_TMP/relative.xml"
expect_rc 3 "check: a relative disk path is refused by the plugin (exit 3)"
expect_text out "REFUSED by the plugin: unsupported configuration: disk path 'images/relative.img' is not absolute" \
    "check: the plugin's refusal is shown"

cat >"$VML_TMP/lease.xml" <<EOF
<domain><name>withlease</name><devices>
  <lease><lockspace>ls1</lockspace><key>key1</key><target path='$VML_TMP/leases' offset='0'/></lease>
  <lease><lockspace>ls1</lockspace><key>key2</key><target path='$VML_TMP/leases' offset='512'/></lease>
</devices></domain>
EOF
check --config "$INDIRECT_CONF" --json check "$VML_TMP/lease.xml"
expect_rc 3 "check: a <lease> with a non-zero offset is refused (exit 3)"
expect_field key1 how explicit
expect_field key1 lockspace "$VML_TMP/leases/ls1"
expect_field key2 state refused
expect_field key1 state refused
expect_field key1 reason "$VML_TMP/leases/ls1/key1 does not exist, and the daemon never creates explicit leases"
# With the lease file there, the lockspace is still one the plugin never registers.
mkdir -p "$VML_TMP/leases/ls1"
: >"$VML_TMP/leases/ls1/key1"
sed -i '/key2/d' "$VML_TMP/lease.xml"
check --config "$INDIRECT_CONF" --json check "$VML_TMP/lease.xml"
expect_rc 4 "check: a <lease> in a lockspace the plugin does not register cannot be judged (exit 4)"
expect_field key1 state free
tap_check "check: ... and the note says why" \
    grep -q "acquire fails with 'Lockspace for path $VML_TMP/leases/ls1 does not exist'" <<<"$VML_OUT"

cat >"$VML_TMP/volume.xml" <<'EOF'
<domain><name>vol</name><devices>
  <disk type='volume'><source pool='default' volume='a.qcow2'/><target dev='vda'/></disk>
</devices></domain>
EOF
check --config "$INDIRECT_CONF" check "$VML_TMP/volume.xml"
expect_rc 4 "check: a storage pool volume cannot be judged offline (exit 4)"

# ---------------------------------------------------------------- bad input

printf '<domain><name>broken</name>\n<devices>\n' >"$VML_TMP/broken.xml"
check --config "$INDIRECT_CONF" check "$VML_TMP/broken.xml"
expect_rc 1 "check: malformed XML exits 1"
expect_text err "error: $VML_TMP/broken.xml:3: malformed XML" "check: malformed XML names FILE:LINE"
# A byte sequence the declared encoding cannot convert: one clear error, no libxml2 noise.
printf '<?xml version="1.0" encoding="ISO-2022-JP"?>\n<domain><name>x\033$B\000\000</name></domain>' \
    >"$VML_TMP/encoding.xml"
check --config "$INDIRECT_CONF" check "$VML_TMP/encoding.xml"
expect_rc 1 "check: an undecodable byte sequence exits 1"
tap_check "check: ... with exactly one line on stderr, the error naming FILE:LINE" \
    test "$(printf '%s\n' "$VML_ERR" | wc -l)" = 1 -a "${VML_ERR#error: "$VML_TMP/encoding.xml":2: malformed XML}" != "$VML_ERR"
printf '<network><name>default</name></network>\n' >"$VML_TMP/network.xml"
check --config "$INDIRECT_CONF" check "$VML_TMP/network.xml"
expect_rc 1 "check: XML that is not a domain exits 1"
expect_text err "the root element is <network>, not <domain>" "check: ... saying what it is"
check --config "$INDIRECT_CONF" check "$VML_TMP/absent.xml"
expect_rc 1 "check: a missing definition exits 1"
expect_text err "cannot open domain definition $VML_TMP/absent.xml: No such file or directory" \
    "check: ... naming the file"
printf 'file_lockspace_dir = "%s"\nbogus_key = 1\n' "$LS" >"$VML_TMP/bad.conf"
check --config "$VML_TMP/bad.conf" check "$VML_TMP/web.xml"
expect_rc 1 "check: a bad plugin config exits 1"
expect_text err "$VML_TMP/bad.conf:2" "check: ... naming FILE:LINE of the bad key"
vml_run "$VMLOCKCTL" --socket "$VML_TMP/no-such-sock" --config "$INDIRECT_CONF" check "$VML_TMP/web.xml"
expect_rc 1 "check: an unreachable daemon exits 1"
expect_text out "would this VM start? cannot tell: the daemon was not reached" \
    "check: ... after still showing the mapping"
check --config "$VML_TMP/nope.conf" check "$VML_TMP/web.xml"
expect_rc 1 "check: a --config that does not exist exits 1 (a typo, not the defaults)"
expect_text err "cannot read --config $VML_TMP/nope.conf: No such file or directory" "check: ... naming it"
vml_run "$VMLOCKCTL" check
expect_rc 2 "check without a definition is a usage error (exit 2)"
vml_run "$VMLOCKCTL" check a.xml b.xml
expect_rc 2 "check with two definitions is a usage error (exit 2)"

tap_done
