#!/usr/bin/env python3
# make_seeds.py: writes the seed corpus of every fuzz target (tests/fuzz/corpus/TARGET/) from readable descriptions; rerun after changing it.
"""The seeds are committed; this script is how they were made, so a change to the wire
protocol or a config key is one edit here and one run:

    python3 tests/fuzz/make_seeds.py [CORPUS-DIR]     (default: tests/fuzz/corpus)

Dispatch seeds follow fuzz_dispatch.c's input format: records of one session-selector byte
(0 main peer 1, 1 main peer 2, 2 admin, 3 main peer 3) and one framed message.  Paths name
the sandbox's scratch tmpfs (/var/tmp): lockspace /var/tmp/ls, disk /var/tmp/disk.img.
"""

import os
import struct
import sys
import uuid as uuidlib

LS_PROG, EXT_PROG = 0x0EA7BEEF, 0x564D4C4B
MAIN_A, MAIN_B, ADMIN, MAIN_C = 0, 1, 2, 3
LS = "/var/tmp/ls"
DISK = "/var/tmp/disk.img"
UUID_A = uuidlib.UUID("c7a5fdbd-edaf-9455-926a-d65c16db1809").bytes
UUID_B = uuidlib.UUID("0b1f0b1f-0000-4000-8000-000000000002").bytes


def u32(v):
    return struct.pack(">I", v & 0xFFFFFFFF)


def i32(v):
    return struct.pack(">i", v)


def u64(v):
    return struct.pack(">Q", v)


def string(s):
    b = s.encode() if isinstance(s, str) else s
    return u32(len(b)) + b + b"\0" * (-len(b) % 4)


def owner(name="vm1", dom_id=1, pid=1, uid=UUID_A):
    return uid + string(name) + u32(dom_id) + u32(pid)


def message(prog, vers, proc, payload=b"", serial=1, mtype=0, status=0):
    body = struct.pack(">IIiiIi", prog, vers, proc, mtype, serial, status) + payload
    return u32(len(body) + 4) + body


def rec(session, msg):
    return bytes([session]) + msg


# ---- program 0x0EA7BEEF ----

def register(session, name="vm1", dom_id=1, pid=1, uid=UUID_A):
    return rec(session, message(LS_PROG, 1, 1, owner(name, dom_id, pid, uid) + u32(0)))


def restrict(session):
    return rec(session, message(LS_PROG, 1, 2, u32(0)))


def new(session, path):
    return rec(session, message(LS_PROG, 1, 3, string(path) + u32(0)))


def resource(session, proc, lockspace, name, flags=0):
    return rec(session, message(LS_PROG, 1, proc, string(lockspace) + string(name) + u32(flags)))


def create_lockspace(session, path):
    return rec(session, message(LS_PROG, 1, 8, string(path)))


# ---- program 0x564D4C4B ----

def batch1(session, proc, own, resources, flags=0):
    body = own + u32(len(resources))
    for lockspace, name, disk, rflags in resources:
        body += string(lockspace) + string(name) + string(disk) + u32(rflags)
    return rec(session, message(EXT_PROG, 1, proc, body + u32(flags)))


def batch2(session, proc, own, resources, action=0, uri="", flags=0):
    body = own + u32(len(resources))
    for lockspace, name, disk, rflags, gen, epoch in resources:
        body += string(lockspace) + string(name) + string(disk) + u32(rflags) + u64(gen) + u64(epoch)
    return rec(session, message(EXT_PROG, 2, proc, body + i32(action) + string(uri) + u32(flags)))


def list_leases(vers=2, cursor=0, maxn=16, flags=0):
    return rec(ADMIN, message(EXT_PROG, vers, 3, u32(cursor) + u32(maxn) + u32(flags)))


def status(vers=2):
    return rec(ADMIN, message(EXT_PROG, vers, 4))


def who(lockspace, name, disk=""):
    return rec(ADMIN, message(EXT_PROG, 2, 6, string(lockspace) + string(name) + string(disk) + u32(0)))


def shutdown(flags=0):
    return rec(ADMIN, message(EXT_PROG, 2, 7, u32(flags)))


def check_now():
    return rec(ADMIN, message(EXT_PROG, 2, 8, u32(0)))


def break_lease(lockspace, name):
    return rec(ADMIN, message(EXT_PROG, 2, 9, string(lockspace) + string(name) + u32(0)))


def dispatch_seeds():
    a = owner("vm-a", 1, 2, UUID_A)
    b = owner("vm-b", 2, 3, UUID_B)
    seeds = {
        "acquire-release-indirect": [
            register(MAIN_A, "vm-a", 1, 2), resource(MAIN_A, 6, LS, "lease1", 2),
            list_leases(), status(), resource(MAIN_A, 7, LS, "lease1"), list_leases(1), status(1)],
        "acquire-direct": [
            register(MAIN_A, "vm-a", 1, 2), resource(MAIN_A, 6, "", DISK, 0),
            who("", "", DISK), resource(MAIN_A, 7, "", DISK)],
        "conflict-exclusive": [
            register(MAIN_A, "vm-a", 1, 2), register(MAIN_C, "vm-b", 2, 3, UUID_B),
            resource(MAIN_A, 6, LS, "x", 2), resource(MAIN_C, 6, LS, "x", 2),
            resource(MAIN_C, 7, LS, "x"), who(LS, "x")],
        "shared-two-holders": [
            register(MAIN_A, "vm-a", 1, 2), register(MAIN_C, "vm-b", 2, 3, UUID_B),
            resource(MAIN_A, 6, LS, "s", 3), resource(MAIN_C, 6, LS, "s", 3),
            resource(MAIN_A, 6, LS, "s", 3), list_leases(2, 0, 1), list_leases(2, 1, 1),
            resource(MAIN_A, 7, LS, "s"), resource(MAIN_C, 7, LS, "s")],
        "restricted": [
            register(MAIN_A), restrict(MAIN_A), resource(MAIN_A, 6, LS, "r", 2),
            register(MAIN_A), restrict(MAIN_A)],
        "unregistered": [
            resource(MAIN_A, 6, LS, "u", 2), restrict(MAIN_A), new(MAIN_A, "/var/tmp/n"),
            register(MAIN_A, "vm0", 0, 1)],
        "resources-create-delete": [
            register(MAIN_A), resource(MAIN_A, 4, LS, "c"), resource(MAIN_A, 6, LS, "c", 0),
            resource(MAIN_A, 5, LS, "c"), resource(MAIN_A, 7, LS, "c"),
            resource(MAIN_A, 5, LS, "c"), resource(MAIN_A, 4, "/var/tmp/none", "c")],
        "lockspaces": [
            register(MAIN_A), new(MAIN_A, "/var/tmp/ls2"), new(MAIN_A, "/var/tmp/ls2"),
            new(MAIN_A, ""), create_lockspace(MAIN_B, "/var/tmp/ls3/deep"),
            create_lockspace(MAIN_B, "/var/tmp/ls3/deep"), create_lockspace(MAIN_B, "relative"),
            create_lockspace(MAIN_B, "/var/tmp/../tmp/x"),
            resource(MAIN_A, 6, "/var/tmp/ls3/deep", "d", 2)],
        "bad-names": [
            register(MAIN_A), resource(MAIN_A, 6, LS, "..", 2), resource(MAIN_A, 6, LS, ".", 2),
            resource(MAIN_A, 6, LS, "a/b", 2), resource(MAIN_A, 6, LS, "", 2),
            resource(MAIN_A, 6, LS, "n" * 300, 2), resource(MAIN_A, 6, "", "relative", 0),
            resource(MAIN_A, 6, "", "/var/tmp/missing", 0), resource(MAIN_A, 6, "", "/var/tmp", 0),
            resource(MAIN_A, 6, LS, b"nul\0byte", 2)],
        "bad-flags": [
            register(MAIN_A), resource(MAIN_A, 6, LS, "f", 0x80), restrict(MAIN_A),
            rec(MAIN_A, message(LS_PROG, 1, 2, u32(1)))],
        "batch-v1": [
            batch1(MAIN_B, 1, a, [(LS, "b1", "/dev/vda", 2), (LS, "b2", "", 3), ("", DISK, DISK, 0)]),
            batch1(MAIN_B, 1, b, [(LS, "b3", "", 2), (LS, "b1", "", 2)]),
            list_leases(1), batch1(MAIN_B, 2, a, [(LS, "b1", "", 0), (LS, "zz", "", 0)]),
            batch1(MAIN_B, 2, a, [(LS, "b2", "", 0), ("", DISK, "", 0)])],
        "batch-v1-duplicates": [
            batch1(MAIN_B, 1, a, [(LS, "d", "", 3), (LS, "d", "", 3), (LS, "e", "", 2), (LS, "e", "", 2)]),
            batch1(MAIN_B, 1, a, [(LS, "f", "", 8)]), batch1(MAIN_B, 1, a, [], 1)],
        "batch-v2-generations": [
            batch2(MAIN_B, 1, a, [(LS, "g", "/dev/vdb", 2, 0, 0)], 1, "qemu:///system"),
            batch2(MAIN_B, 2, a, [(LS, "g", "", 0, 0, 0)]),
            batch2(MAIN_B, 1, b, [(LS, "g", "", 6, 1, 0)], 3, "qemu:///system"),
            batch2(MAIN_B, 5, b, [(LS, "g", "", 0, 0, 0), (LS, "h", "", 0, 0, 0)]),
            batch2(MAIN_B, 1, a, [(LS, "g", "", 6, 1, 0)], 9),
            who(LS, "g"), batch2(MAIN_B, 2, b, [(LS, "g", "", 0, 0, 0)])],
        "break-and-check": [
            batch2(MAIN_B, 1, a, [(LS, "k", "", 2, 0, 0)], 4),
            batch2(MAIN_B, 1, b, [(LS, "k2", "", 2, 0, 0)], 2, "qemu:///system"),
            check_now(), break_lease(LS, "k"), break_lease(LS, "k2"), break_lease(LS, "none"),
            status(), check_now()],
        "shutdown": [
            batch1(MAIN_B, 1, a, [(LS, "q", "", 2)]), shutdown(0), shutdown(1), shutdown(2)],
        "wrong-socket": [
            list_leases(), rec(MAIN_A, message(EXT_PROG, 2, 3, u32(0) + u32(1) + u32(0))),
            rec(ADMIN, message(LS_PROG, 1, 1, owner() + u32(0))), list_leases(2, 0, 0),
            list_leases(2, 0, 5000)],
        "protocol-errors": [
            rec(MAIN_A, message(0x12345678, 1, 1)), rec(MAIN_A, message(LS_PROG, 9, 1)),
            rec(MAIN_A, message(LS_PROG, 1, 99)), rec(MAIN_A, message(LS_PROG, 1, -1)),
            rec(MAIN_A, message(LS_PROG, 1, 1, owner() + u32(0), mtype=1)),
            rec(MAIN_A, message(LS_PROG, 1, 1, owner() + u32(0), status=1)),
            rec(MAIN_B, message(EXT_PROG, 3, 1))],
        "trailing-bytes": [
            rec(MAIN_A, message(LS_PROG, 1, 2, u32(0) + u32(0))), status(), rec(ADMIN, message(EXT_PROG, 2, 4, u32(0)))],
        "short-payload": [
            rec(MAIN_A, message(LS_PROG, 1, 1, owner()[:10])), rec(MAIN_B, message(LS_PROG, 1, 8, u32(100)))],
        "bad-length-word": [rec(MAIN_A, u32(3) + b"\0" * 8), rec(MAIN_B, u32(0xFFFFFFFF)), status()],
        "string-over-bound": [
            rec(MAIN_A, message(LS_PROG, 1, 8, u32(65537) + b"a" * 65540))],
        "owner-pid-not-running": [
            register(MAIN_A, "ghost", 5, 4000), resource(MAIN_A, 6, LS, "p", 2),
            batch1(MAIN_B, 1, owner("ghost", 5, 0), [(LS, "p", "", 2)]),
            batch1(MAIN_B, 1, owner("ghost", 5, 0x80000000), [(LS, "p", "", 2)])],
    }
    return {name: b"".join(records) for name, records in seeds.items()}


DMN_CONFIG_SEEDS = {
    "defaults": b"",
    "full": b"""# every key
unix_sock_path = "/run/vmlockd/vmlockd-sock"
admin_unix_sock_path = "/run/vmlockd/vmlockd-admin-sock"
max_clients = 1024
admin_max_clients = 16
log_level = 3
log_outputs = "3:stderr 1:file:/var/log/vmlockd.log"
log_filters = "1:locking"
owner_kill_grace_ms = 1600
lease_check_interval_ms = 10000
lease_check_timeout_ms = 20000
lockfailure_pause_helper = "/usr/libexec/vmlockd-pause-helper"
keeper_sock_path = "/run/vmlockd.keeper-sock"
""",
    "syntax": b"""max_clients = 10;
log_outputs = '''2:stderr'''
log_filters = \"\"\"a
b\"\"\"
unknown_list = [ "a", "b", ]
""",
    "errors": b"max_clients = 0\nlog_level = 9\n",
    "bad-syntax": b"max_clients = \"ten\"\nunix_sock_path = relative\n= 3\nkey",
    "duplicate": b"log_level = 1\nlog_level = 2\n",
    "long-path": b"unix_sock_path = \"/" + b"a" * 200 + b"\"\n",
    "negative": b"owner_kill_grace_ms = -1\nlease_check_timeout_ms = 99999999999999999999\n",
}

DRV_CONFIG_SEEDS = {
    # byte 0: bit 0 privileged, bit 1 no XDG_RUNTIME_DIR, bit 2 relative XDG_RUNTIME_DIR
    "defaults-root": b"\x01",
    "defaults-user": b"\x00",
    "user-no-runtime": b"\x02",
    "user-relative-runtime": b"\x04",
    "full": b"\x01auto_disk_leases = 0\nrequire_lease_for_disks = 1\n"
            b"file_lockspace_dir = \"/var/lib/libvirt/vmlockd/files\"\n"
            b"lvm_lockspace_dir = \"/var/lib/libvirt/vmlockd/lvmvolumes\"\n"
            b"scsi_lockspace_dir = \"/var/lib/libvirt/vmlockd/scsivolumes\"\n"
            b"unix_sock_path = \"/run/vmlockd/vmlockd-sock\"\n",
    "auto-with-require": b"\x01auto_disk_leases = 1\nrequire_lease_for_disks = 1\n",
    "bad-values": b"\x01auto_disk_leases = 2\nfile_lockspace_dir = \"relative\"\n",
    "long-socket": b"\x00unix_sock_path = \"/" + b"s" * 120 + b"\"\n",
    "list-value": b"\x01file_lockspace_dir = [ \"/a\" ]\n",
    "unknown-key": b"\x01lock_manager = \"lockd\"\n",
}

DOMAIN_XML_SEEDS = {
    "typical": b"""<domain type='kvm'>
  <name>vm1</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/vm1.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='block' device='lun'>
      <source dev='/dev/sdb'/>
      <target dev='sda' bus='scsi'/>
      <shareable/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <disk type='network' device='disk'>
      <source protocol='rbd' name='pool/image'/>
      <target dev='vdb'/>
    </disk>
    <disk type='volume' device='disk'>
      <source pool='default' volume='v1'/>
      <target dev='vdc'/>
    </disk>
    <disk type='dir'>
      <source dir='/srv/share'/>
      <target dev='vdd'/>
    </disk>
    <lease>
      <lockspace>somearea</lockspace>
      <key>somekey</key>
      <target path='/some/lease/path' offset='1024'/>
    </lease>
  </devices>
</domain>
""",
    "minimal": b"<domain><name>x</name></domain>",
    "no-name": b"<domain><devices/></domain>",
    "not-domain": b"<network><name>n</name></network>",
    "bad-uuid": b"<domain><name>x</name><uuid>not-a-uuid</uuid></domain>",
    "malformed": b"<domain><name>x</name>",
    "entity": b"""<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY e SYSTEM "file:///etc/passwd"><!ENTITY big "aaaaaaaaaaaaaaaa">]>
<domain><name>&e;&big;</name></domain>
""",
    "lease-no-lockspace": b"<domain><name>x</name><devices><lease><key>k</key>"
                          b"<target path='/p'/></lease></devices></domain>",
}

RECORD_SEEDS = {
    "empty": b"",
    "held": b"""vmlockd-owner-record 1
state held
generation 7
run_start 6
host hv1.example.com
boot_id 0b1f0b1f-0000-4000-8000-000000000002
daemon_pid 812
owner_pid 4242
domain vm1
uuid c7a5fdbd-edaf-9455-926a-d65c16db1809
acquired_at 1795000000123456 2026-11-22T09:21:00Z
end
""" + b"\n" * 64,
    "free": b"""vmlockd-owner-record 1
state free
generation 8
run_start 6
last_host hv\\x0a1
last_boot_id x
last_daemon_pid 812
last_owner_pid 4242
last_domain vm\\x5c1
last_uuid c7a5fdbd-edaf-9455-926a-d65c16db1809
last_acquired_at 1795000000123456 2026-11-22T09:21:00Z
released_at 1795000000999999 2026-11-22T09:21:00Z
future_key whatever
end
""",
    "torn": b"vmlockd-owner-record 1\nstate held\ngeneration 3\n",
    "foreign": b"QFI\xfb\x00\x00\x00\x03",
    "newer": b"vmlockd-owner-record 2\nstate held\nend\n",
    "bad-escape": b"vmlockd-owner-record 1\nstate held\ngeneration 1\nhost a\\x00b\nend\n",
}


# ---- handover (fuzz_handover.c: byte 0 = 0 handover blob, 1 keeper message) ----

def i64(v):
    return struct.pack(">q", v)


def xbool(v):
    return u32(1 if v else 0)


def opaque(b):
    return u32(len(b)) + b + b"\0" * (-len(b) % 4)


def array(items):
    return u32(len(items)) + b"".join(items)


def snap_holder(own, start_time=4242, since=1795000000000000, action=0, uri=""):
    return own + u64(start_time) + i64(since) + i32(action) + string(uri)


def snap_lease(lease_id, lockspace, name, path, disk, holders, flags=2, state=1, seq=1):
    return (u64(lease_id) + string(lockspace) + string(name) + string(path) + string(disk) +
            u32(flags) + u64(2049) + u64(131) + u64(7) + u64(6) + u64(0) + u32(state) +
            u32(seq) +
            array(holders))


# Descriptors fuzz_handover.c keeps open for blobs to name.
FD = 100


def handover(leases=True, clients=True, magic=0x564D4C48, version=1, pid_fd=FD, lease_fd=FD + 6,
             client_fd=FD + 4):
    own = owner("vm1", 1, 4242)
    body = (u32(magic) + u32(version) + i32(pid_fd) + string("/run/vmlockd.pid") + i32(FD + 1) +
            u32(777) + u64(0x1234) + u64(5) + u32(3) + u64(2) + i64(1000) + u64(9) + u64(1) +
            u64(0) + u64(0) + u64(0) + u32(1) + u32(0))
    body += array([string("/var/lib/libvirt/vmlockd/files")])
    body += array([i32(FD + 2) + i32(0) + string("/run/vmlockd/vmlockd-sock") + u64(1) + u64(2) + u32(1024),
                   i32(FD + 3) + i32(1) + string("") + u64(0) + u64(0) + u32(16)])
    client_list = []
    if clients:
        client_list.append(i32(client_fd) + i32(0) + i32(4242) + u32(0) + xbool(True) + own +
                           xbool(True) + opaque(b"\0\0\0\x30\x0e\xa7") + opaque(b""))
    body += array(client_list)
    body += array([own + i32(FD + 5) + u64(99) + i32(0) + string("qemu:///system") + xbool(False) +
                   xbool(False) + i64(0)])
    lease_list = []
    if leases:
        lease_list.append(i32(lease_fd) + snap_lease(
            1, "/var/lib/libvirt/vmlockd/files", "abc", "/var/lib/libvirt/vmlockd/files/abc",
            "/images/vm1.qcow2", [snap_holder(own)]))
    body += array(lease_list)
    body += array([string("/var/lib/libvirt/vmlockd/files") + string("abc") + u64(7) + u64(6) +
                   own + i64(1795000000000000)])
    return body


def keeper_msg(op, items):
    return u32(0x564D4B50) + u32(1) + u32(op) + u32(4242) + array(items)


def keeper_item(item_id, meta, nfds=1, holders=1):
    return u64(item_id) + u32(nfds) + u32(holders) + opaque(meta)


HANDOVER_SEEDS = {
    "full": b"\0" + handover(),
    "no-leases": b"\0" + handover(leases=False, clients=False),
    "bad-magic": b"\0" + handover(magic=0x11111111),
    "bad-version": b"\0" + handover(version=2),
    "truncated": b"\0" + handover()[:120],
    "fd-standard-stream": b"\0" + handover(pid_fd=2),
    "fd-twice": b"\0" + handover(client_fd=FD + 6),
    "fd-not-open": b"\0" + handover(lease_fd=99),
    "lease-without-fd": b"\0" + handover(lease_fd=-1),
    "trailing": b"\0" + handover() + b"\0\0\0\0",
    "keeper-add": b"\1" + keeper_msg(2, [keeper_item(1, snap_lease(
        1, "/ls", "a", "/ls/a", "", [snap_holder(owner("vm1", 1, 4242))]))]),
    "keeper-hello": b"\1" + keeper_msg(1, []),
    "keeper-drop": b"\1" + keeper_msg(4, [keeper_item(1, b"", 0, 0), keeper_item(2, b"", 0, 0)]),
    "keeper-bad-meta": b"\1" + keeper_msg(6, [keeper_item(3, b"\0\0\0\1garbage")]),
}


# ---- client (fuzz_client.c: byte 0 = the call, then the daemon's whole answer) ----

def reply(prog, vers, proc, payload=b"", serial=0, status=0):
    return message(prog, vers, proc, payload, serial=serial, mtype=1, status=status)


def error_payload(code=87, domain=51, text="resource busy: Lockspace resource 'a' is locked"):
    opt = u32(1) + string(text)
    return (i32(code) + i32(domain) + opt + i32(2) + u32(0) + opt + opt + u32(0) + i32(-1) +
            i32(-1) + u32(0))


def list_ret():
    holder = owner("vm1", 1, 4242) + u64(1795000000000000)
    lease = (string("/var/lib/ls") + string("a") + string("/var/lib/ls/a") + string("/img") +
             u32(2) + u32(1) + holder)
    return u32(1) + lease + u32(0) + u32(1)


def status2_ret():
    return (string("0.1.0") + u32(812) + u64(5) + u32(2) + u32(1) + u32(1) + u32(3) + u64(9) +
            u64(1) + u64(0) + u64(0) + u64(4) + u32(10000) + u32(813) + u32(1) + u32(0) +
            u64(0x1234))


def who_ret():
    holder = (owner("vm1", 1, 4242) + u64(1795000000000000) + string("hv1") +
              string("0b1f") + u32(812))
    entry = (string("/var/lib/ls") + string("a") + string("/var/lib/ls/a") + string("/img") +
             u32(1) + u32(1) + u32(0) + u64(7) + u64(0) + u32(1) + holder)
    return u32(1) + entry


CLIENT_SEEDS = {
    "acquire-ok": b"\0" + reply(LS_PROG, 1, 6),
    "acquire-error": b"\0" + reply(LS_PROG, 1, 6, error_payload(), status=1),
    "acquire-cannot-find-program": b"\0" + reply(LS_PROG, 1, 6, error_payload(
        39, 7, "Cannot find program 245874415 version 1"), status=1),
    "acquire-wrong-serial": b"\0" + reply(LS_PROG, 1, 6, serial=5),
    "acquire-payload-on-void": b"\0" + reply(LS_PROG, 1, 6, u32(0)),
    "acquire-eof": b"\0",
    "acquire-huge-length": b"\0" + u32(0x02000004) + b"\0" * 24,
    "list": b"\1" + reply(EXT_PROG, 1, 3, list_ret()),
    "list-truncated": b"\1" + reply(EXT_PROG, 1, 3, list_ret())[:60],
    "status2": b"\2" + reply(EXT_PROG, 2, 4, status2_ret()),
    "batch2": b"\3" + reply(EXT_PROG, 2, 1, u32(1) + u64(7) + u64(0) + u32(1)),
    "batch2-error": b"\3" + reply(EXT_PROG, 2, 1, error_payload(55, 51, "fenced"), status=1),
    "who": b"\4" + reply(EXT_PROG, 2, 6, who_ret()),
}


def write_all(root, target, seeds):
    directory = os.path.join(root, target)
    os.makedirs(directory, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    write_all(root, "dispatch", dispatch_seeds())
    write_all(root, "dmn_config", DMN_CONFIG_SEEDS)
    write_all(root, "drv_config", DRV_CONFIG_SEEDS)
    write_all(root, "domain_xml", DOMAIN_XML_SEEDS)
    write_all(root, "record", RECORD_SEEDS)
    write_all(root, "handover", HANDOVER_SEEDS)
    write_all(root, "client", CLIENT_SEEDS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
