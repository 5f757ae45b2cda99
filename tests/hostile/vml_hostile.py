#!/usr/bin/env python3
# vml_hostile.py: shared pieces of the hostile-client tests: XDR, raw connections, a daemon under test, lease checks from another process.
"""Everything here talks to vmlockd the way an attacker with a socket would: raw bytes.

The daemon under test runs in a private temporary directory (config, sockets, pid file, log,
lockspace); `Daemon.stop()` and the cleanup of `Harness` end only the processes recorded
here, by pid.  Nothing sleeps: every wait is a blocking read with a bound (a socket timeout
or a pidfd poll), never a delay.
"""

import errno
import fcntl
import json
import os
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile

LS_PROG, EXT_PROG = 0x0EA7BEEF, 0x564D4C4B
CALL, REPLY = 0, 1
OK, ERROR = 0, 1
VIR_ERR_INTERNAL_ERROR = 1
VIR_ERR_INVALID_ARG = 8
VIR_ERR_OPERATION_DENIED = 29
VIR_ERR_SYSTEM_ERROR = 38
VIR_ERR_RPC = 39
VIR_ERR_OPERATION_INVALID = 55
VIR_ERR_RESOURCE_BUSY = 87
VIR_FROM_RPC = 7
IO_TIMEOUT = 60.0          # bound on any single wait for the daemon (never a delay)


# ---------------------------------------------------------------- XDR

def u32(v):
    return struct.pack(">I", v & 0xFFFFFFFF)


def i32(v):
    return struct.pack(">i", v)


def u64(v):
    return struct.pack(">Q", v)


def xstring(s):
    b = s.encode() if isinstance(s, str) else s
    return u32(len(b)) + b + b"\0" * (-len(b) % 4)


def owner(name, dom_id, pid, uuid_bytes=b"\x11" * 16):
    return uuid_bytes + xstring(name) + u32(dom_id) + u32(pid)


def frame(prog, vers, proc, payload=b"", serial=0, mtype=CALL, status=OK):
    body = struct.pack(">IIiiIi", prog, vers, proc, mtype, serial, status) + payload
    return u32(len(body) + 4) + body


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("payload truncated")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def string(self):
        n = self.u32()
        s = self.take(n)
        self.take(-n % 4)
        return s.decode(errors="replace")

    def opt_string(self):
        return self.string() if self.u32() else None


# ---------------------------------------------------------------- connections

class Closed(Exception):
    """The daemon closed the connection (EOF or reset) instead of answering."""


class Conn:
    """One raw connection.  call() sends one message and returns (status, payload)."""

    def __init__(self, path, timeout=IO_TIMEOUT):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Connect in blocking mode: a full listen backlog then waits for the daemon's accept
        # instead of failing with EAGAIN, as a socket with a timeout would.
        self.sock.connect(path)
        self.sock.settimeout(timeout)
        self.serial = 0

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_maybe_refused(self, data):
        """Send to a connection the daemon may already have closed (a refused peer)."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def recv_exact(self, n):
        chunks = []
        while n:
            try:
                chunk = self.sock.recv(n)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed()
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def read_reply(self):
        """(header tuple, payload) of the next reply; raises Closed at EOF."""
        length = struct.unpack(">I", self.recv_exact(4))[0]
        if length < 28:
            raise ValueError("reply length %d is shorter than a header" % length)
        body = self.recv_exact(length - 4)
        return struct.unpack(">IIiiIi", body[:24]), body[24:]

    def call(self, prog, vers, proc, payload=b"", mtype=CALL, status=OK):
        serial = self.serial
        self.serial += 1
        self.send_raw(frame(prog, vers, proc, payload, serial, mtype, status))
        hdr, body = self.read_reply()
        if hdr[0] != prog or hdr[1] != vers or hdr[2] != proc or hdr[3] != REPLY or hdr[4] != serial:
            raise ValueError("reply %r does not answer call %d" % (hdr, serial))
        return hdr[5], body

    def expect_eof(self):
        """True when the daemon closes the connection without sending a byte."""
        try:
            data = self.sock.recv(1)
        except ConnectionResetError:
            return True
        return data == b""

    def close(self):
        self.sock.close()


def error_of(status, body):
    """(code, domain, message) of an error reply, None for success."""
    if status == OK:
        return None
    r = Reader(body)
    code, domain = r.i32(), r.i32()
    return code, domain, r.opt_string() or ""


def ls_register(conn, name, dom_id, pid, flags=0):
    return error_of(*conn.call(LS_PROG, 1, 1, owner(name, dom_id, pid) + u32(flags)))


def ls_resource(conn, proc, lockspace, name, flags=0):
    return error_of(*conn.call(LS_PROG, 1, proc, xstring(lockspace) + xstring(name) + u32(flags)))


def ls_acquire(conn, lockspace, name, flags=2):
    return ls_resource(conn, 6, lockspace, name, flags)


def ls_release(conn, lockspace, name):
    return ls_resource(conn, 7, lockspace, name, 0)


def batch1_args(own, resources, flags=0):
    body = own + u32(len(resources))
    for lockspace, name, disk, rflags in resources:
        body += xstring(lockspace) + xstring(name) + xstring(disk) + u32(rflags)
    return body + u32(flags)


def list_leases(admin_path):
    """Every lease as (lockspace, name, flags, sorted holder pids), via LIST v1 pages."""
    conn = Conn(admin_path)
    leases, cursor = [], 0
    try:
        while True:
            status, body = conn.call(EXT_PROG, 1, 3, u32(cursor) + u32(1024) + u32(0))
            err = error_of(status, body)
            if err is not None:
                raise RuntimeError("LIST failed: %r" % (err,))
            r = Reader(body)
            for _ in range(r.u32()):
                lockspace, name, _path, _disk = r.string(), r.string(), r.string(), r.string()
                flags = r.u32()
                pids = []
                for _ in range(r.u32()):
                    r.take(16)
                    r.string()
                    r.u32()
                    pids.append(r.u32())
                    r.u64()
                leases.append((lockspace, name, flags, tuple(sorted(pids))))
            cursor = r.u32()
            r.u32()
            if cursor == 0:
                return sorted(leases)
    finally:
        conn.close()


def ofd_locked(path):
    """True when another open file description holds a lock on byte 0 of path (checked from
    this process with F_OFD_SETLK, which conflicts with the daemon's OFD lock)."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        lock = struct.pack("hhxxxxqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 0, 1, 0)
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, lock)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return True
            raise
        unlock = struct.pack("hhxxxxqqixxxx", fcntl.F_UNLCK, os.SEEK_SET, 0, 1, 0)
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, unlock)
        return False
    finally:
        os.close(fd)


def wait_pid_exit(pid, timeout=IO_TIMEOUT):
    """Block until pid exits (pidfd); True when it did within timeout."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


# ---------------------------------------------------------------- TAP

class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0
        self.todo_failed = 0        # TODO points that failed: known, reported bugs

    def ok(self, cond, desc, diag=None):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, desc))
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, desc))
            if diag:
                for line in str(diag).splitlines():
                    print("#   " + line)
        sys.stdout.flush()
        return cond

    def todo(self, cond, desc, reason, diag=None):
        """A point for a known, reported bug: it may fail without failing the suite."""
        self.n += 1
        if not cond:
            self.todo_failed += 1
        print("%s %d - %s # TODO %s" % ("ok" if cond else "not ok", self.n, desc, reason))
        if not cond and diag:
            for line in str(diag).splitlines():
                print("#   " + line)
        sys.stdout.flush()
        return cond

    def diag(self, text):
        for line in str(text).splitlines():
            print("# " + line)
        sys.stdout.flush()

    def done(self):
        print("1..%d" % self.n)
        return 0 if self.failed == 0 else 1


def skip_all(reason):
    print("1..0 # SKIP %s" % reason)
    sys.exit(0)


# ---------------------------------------------------------------- the daemon under test

class Harness:
    """A private directory, a daemon, a holder that keeps one lease, an idle owner process.

    Every process started is recorded and ended by cleanup(), by pid, never by name."""

    def __init__(self, name, extra_config=()):
        self.vmlockd = os.environ.get("VMLOCKD", "")
        if not self.vmlockd or not os.path.exists(self.vmlockd):
            skip_all("VMLOCKD is not built (set VMLOCKD or run through meson test)")
        self.tmp = tempfile.mkdtemp(prefix="vml-%s." % name)
        os.chmod(self.tmp, 0o700)
        self.sock = os.path.join(self.tmp, "sock")
        self.admin = os.path.join(self.tmp, "admin-sock")
        self.pidfile = os.path.join(self.tmp, "vmlockd.pid")
        self.log = os.path.join(self.tmp, "vmlockd.log")
        self.conf = os.path.join(self.tmp, "vmlockd.conf")
        self.lockspace = os.path.join(self.tmp, "ls")
        self.children = []
        self.daemon_pid = None
        self.keeper_pid = None
        with open(self.conf, "w") as f:
            f.write('unix_sock_path = "%s"\n' % self.sock)
            f.write('admin_unix_sock_path = "%s"\n' % self.admin)
            f.write('log_level = 1\n')
            f.write('log_outputs = "1:file:%s"\n' % self.log)
            f.write('owner_kill_grace_ms = 200\n')
            for line in extra_config:
                f.write(line + "\n")

    def start(self):
        wrapper = shlex.split(os.environ.get("VMLOCKD_WRAPPER", ""))
        rc = subprocess.call(wrapper + [self.vmlockd, "-d", "-f", self.conf, "-p", self.pidfile],
                             stdin=subprocess.DEVNULL)
        if rc != 0:
            raise RuntimeError("vmlockd -d exited %d: %s" % (rc, self.log_tail()))
        with open(self.pidfile) as f:
            self.daemon_pid = int(f.read().strip())
        try:
            self.keeper_pid = status2(self.admin)["keeper_pid"] or None
        except (OSError, Closed, ValueError, RuntimeError):
            self.keeper_pid = None
        pids_log = os.environ.get("VML_DAEMON_PIDS_LOG")
        if pids_log:
            with open(pids_log, "a") as f:
                f.write("%d\n" % self.daemon_pid)

    def spawn_idle(self):
        """A process that only waits (an owner pid that is not this test): returns its pid."""
        proc = subprocess.Popen([sys.executable, "-c", "import signal\nwhile True: signal.pause()"],
                                stdin=subprocess.DEVNULL)
        self.children.append(proc)
        return proc.pid

    def spawn_holder(self, lease_name):
        """A process that registers itself, acquires (lockspace, lease_name) exclusively and
        keeps its holder connection, as QEMU does.  Returns the Popen (stdout: 'ok' lines)."""
        rawclient = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib",
                                 "vml_rawclient.py")
        proc = subprocess.Popen(
            [sys.executable, rawclient, "--socket", self.sock,
             "create-lockspace", self.lockspace,
             "register", "victim", "1", "self", "22222222-2222-4222-8222-000000000001",
             "acquire", self.lockspace, lease_name, "2", "hold"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.children.append(proc)
        lines = [proc.stdout.readline().strip() for _ in range(4)]
        if lines != ["ok", "ok", "ok", "ready"]:
            raise RuntimeError("the holder did not get its lease: %r" % lines)
        return proc

    def log_tail(self, n=20):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def log_has(self, fragment):
        try:
            with open(self.log, errors="replace") as f:
                return fragment in f.read()
        except OSError:
            return False

    def alive(self):
        if self.daemon_pid is None:
            return False
        try:
            with open("/proc/%d/stat" % self.daemon_pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            return state not in ("Z", "X")
        except OSError:
            return False

    def stop(self):
        """SHUTDOWN --force over the admin socket, then wait for the exit; SIGKILL as a last
        resort (the pid is the one this harness recorded)."""
        if self.daemon_pid is None or not self.alive():
            return
        try:
            conn = Conn(self.admin, timeout=10)
            conn.call(EXT_PROG, 2, 7, u32(1))
            conn.close()
        except (OSError, Closed, ValueError):
            pass
        if not wait_pid_exit(self.daemon_pid, 30):
            os.kill(self.daemon_pid, signal.SIGKILL)
            wait_pid_exit(self.daemon_pid, 10)
        # A keeper outlives a daemon that did not stop cleanly (it holds the locks): end it.
        if self.keeper_pid is not None and wait_pid_exit(self.keeper_pid, 10) is False:
            os.kill(self.keeper_pid, signal.SIGKILL)
            wait_pid_exit(self.keeper_pid, 10)

    def cleanup(self, keep=False):
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self.stop()
        if keep:
            print("# kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def dump_json(obj):
    return json.dumps(obj, sort_keys=True)


def status2(admin_path):
    """STATUS version 2 as a dict (the counters the tests use)."""
    conn = Conn(admin_path)
    try:
        status, body = conn.call(EXT_PROG, 2, 4)
    finally:
        conn.close()
    err = error_of(status, body)
    if err is not None:
        raise RuntimeError("STATUS failed: %r" % (err,))
    return status2_decode(body)


def status2_decode(body):
    """The body of a successful STATUS version 2 reply as a dict."""
    r = Reader(body)
    out = {"version": r.string(), "pid": r.u32(), "uptime_usec": r.u64()}
    for key in ("lockspaces", "leases", "owners", "clients"):
        out[key] = r.u32()
    for key in ("acquires", "conflicts", "owner_kills", "lost_leases", "check_rounds"):
        out[key] = r.u64()
    for key in ("check_interval_ms", "keeper_pid", "reexecs", "adopted"):
        out[key] = r.u32()
    out["epoch"] = r.u64()
    return out
