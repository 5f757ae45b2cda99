#!/usr/bin/env python3
# test_hostile.py: hostile clients against vmlockd (TAP): refused peers, malformed and oversized messages, traversal, stalls, floods; the daemon keeps serving and no lock changes.
"""After every attack the same four checks run (check_unharmed):
  - the daemon process is alive;
  - a second client's REGISTER + ACQUIRE + RELEASE completes (bounded wait, no sleep);
  - the daemon's descriptors are what they were before the attack (/proc/PID/fd, counted
    while the probe connection is open: the daemon handles the attacker's hangup before the
    probe's first request, ARCHITECTURE.md daemon invariant 2);
  - LIST shows exactly the leases held before, and the victim's lease file is still locked
    as seen from this (another) process with F_OFD_SETLK.

Run: meson test -C BUILD --suite hostile -v  (needs root: it also runs a client as nobody).
"""

import os
import socket
import struct
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vml_hostile import (  # noqa: E402
    EXT_PROG, LS_PROG, OK, VIR_ERR_INVALID_ARG, VIR_ERR_OPERATION_DENIED, VIR_ERR_RPC,
    VIR_FROM_RPC, Closed, Conn, Harness, Tap, batch1_args, error_of, fd_count, frame,
    list_leases, ls_acquire, ls_register, ls_release, ls_resource, ofd_locked, owner, skip_all,
    u32, xstring)

MAX_CLIENTS = 6


class Ctx:
    def __init__(self, tap, h):
        self.tap = tap
        self.h = h
        self.victim_file = os.path.join(h.lockspace, "victim")
        self.probe_owner = h.spawn_idle()
        self.baseline_leases = None
        self.baseline_fds = None
        self.probes = 0

    def probe(self):
        """Register, acquire and release a fresh lease on a new connection; returns
        (ok, daemon fd count while the probe connection was open, details)."""
        self.probes += 1
        name = "probe-%d" % self.probes
        conn = Conn(self.h.sock)
        try:
            r1 = ls_register(conn, "probe", 77, self.probe_owner)
            r2 = ls_acquire(conn, self.h.lockspace, name)
            r3 = ls_release(conn, self.h.lockspace, name)
            fds = fd_count(self.h.daemon_pid)
            return (r1, r2, r3) == (None, None, None), fds, (r1, r2, r3)
        except (OSError, Closed, ValueError) as exc:
            return False, -1, repr(exc)
        finally:
            conn.close()

    def baseline(self):
        ok, fds, details = self.probe()
        if not ok:
            raise RuntimeError("the first probe failed: %r" % (details,))
        self.baseline_fds = fds
        self.baseline_leases = list_leases(self.h.admin)

    def check_unharmed(self, what, attackers_open=0):
        """The four checks; attackers_open = hostile connections still open (their
        descriptors are expected in the daemon)."""
        tap, h = self.tap, self.h
        alive = h.alive()
        tap.ok(alive, "%s: the daemon is alive" % what, h.log_tail())
        if not alive:
            return False
        ok, fds, details = self.probe()
        tap.ok(ok, "%s: another client's acquire and release still complete" % what, details)
        want = self.baseline_fds + attackers_open
        tap.ok(fds == want, "%s: no descriptor leaked (%d open, %d expected)" % (what, fds, want))
        leases = list_leases(h.admin)
        tap.ok(leases == self.baseline_leases, "%s: the leases are those held before" % what,
               "now:    %r\nbefore: %r" % (leases, self.baseline_leases))
        tap.ok(ofd_locked(self.victim_file),
               "%s: the victim's lease file is still locked (seen from another process)" % what)
        return True


# ---------------------------------------------------------------- the attacks

def non_root_peer(c):
    tap, h = c.tap, c.h
    nobody = 65534
    # Layer 1: the sockets are 0600 root: nobody cannot even connect.
    mode = os.stat(h.sock).st_mode & 0o777
    tap.ok(mode == 0o600, "the main socket is mode 0600 (is %o)" % mode)
    script = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
              "try:\n s.connect(sys.argv[1])\nexcept PermissionError:\n print('EACCES'); sys.exit(0)\n"
              "print('connected')\n")
    os.chmod(h.tmp, 0o711)
    try:
        out = subprocess.run(["setpriv", "--reuid=%d" % nobody, "--regid=%d" % nobody,
                              "--clear-groups", sys.executable, "-c", script, h.sock],
                             capture_output=True, text=True, timeout=60).stdout.strip()
        tap.ok(out == "EACCES", "a uid-65534 client cannot connect to the 0600 socket", out)
        # Layer 2: with the socket opened up, SO_PEERCRED refuses the peer before any request.
        os.chmod(h.sock, 0o666)
        script = ("import socket,struct,sys\ns=socket.socket(socket.AF_UNIX)\ns.settimeout(60)\n"
                  "s.connect(sys.argv[1])\n"
                  "body=struct.pack('>IIiiIi',0x0EA7BEEF,1,8,0,0,0)+struct.pack('>I',4)+b'/tmp'\n"
                  "try:\n s.sendall(struct.pack('>I',len(body)+4)+body)\nexcept OSError:\n pass\n"
                  "try:\n d=s.recv(100)\nexcept ConnectionResetError:\n d=b''\n"
                  "print('eof' if d==b'' else 'answered %d bytes' % len(d))\n")
        proc = subprocess.run(["setpriv", "--reuid=%d" % nobody, "--regid=%d" % nobody,
                               "--clear-groups", sys.executable, "-c", script, h.sock],
                              capture_output=True, text=True, timeout=60)
        tap.ok(proc.stdout.strip() == "eof",
               "a uid-65534 peer is disconnected without an answer", proc.stdout + proc.stderr)
        tap.ok(h.log_has("uid %d" % nobody), "the daemon logs the refused uid", h.log_tail(5))
    finally:
        os.chmod(h.sock, 0o600)
        os.chmod(h.tmp, 0o700)
    c.check_unharmed("non-root peer")


def restricted(c):
    tap, h = c.tap, c.h
    conn = Conn(h.sock)
    try:
        tap.ok(ls_register(conn, "r", 5, c.probe_owner) is None, "restricted: REGISTER")
        tap.ok(error_of(*conn.call(LS_PROG, 1, 2, u32(0))) is None, "restricted: RESTRICT")
        own = owner("r", 5, c.probe_owner)
        calls = [
            ("REGISTER", LS_PROG, 1, 1, own + u32(0)),
            ("RESTRICT", LS_PROG, 1, 2, u32(0)),
            ("NEW", LS_PROG, 1, 3, xstring(h.tmp + "/new") + u32(0)),
            ("CREATE_RESOURCE", LS_PROG, 1, 4, xstring(h.lockspace) + xstring("c") + u32(0)),
            ("DELETE_RESOURCE", LS_PROG, 1, 5, xstring(h.lockspace) + xstring("victim") + u32(0)),
            ("ACQUIRE_RESOURCE", LS_PROG, 1, 6, xstring(h.lockspace) + xstring("victim") + u32(2)),
            ("RELEASE_RESOURCE", LS_PROG, 1, 7, xstring(h.lockspace) + xstring("victim") + u32(0)),
            ("CREATE_LOCKSPACE", LS_PROG, 1, 8, xstring(h.tmp + "/ls-new")),
            ("BATCH_ACQUIRE v1", EXT_PROG, 1, 1, batch1_args(own, [(h.lockspace, "b", "", 2)])),
            ("BATCH_RELEASE v1", EXT_PROG, 1, 2,
             batch1_args(owner("victim", 1, 0), [(h.lockspace, "victim", "", 0)])),
        ]
        for name, prog, vers, proc, payload in calls:
            err = error_of(*conn.call(prog, vers, proc, payload))
            tap.ok(err is not None and err[0] == VIR_ERR_OPERATION_DENIED and
                   "restricted" in err[2],
                   "restricted: %s is refused with VIR_ERR_OPERATION_DENIED" % name, err)
        tap.ok(not os.path.exists(h.tmp + "/new") and not os.path.exists(h.tmp + "/ls-new") and
               not os.path.exists(os.path.join(h.lockspace, "c")),
               "restricted: the refused calls created nothing")
    finally:
        conn.close()
    c.check_unharmed("restricted connection")


def oversized_and_bad_lengths(c):
    tap, h = c.tap, c.h
    for value, what in ((0, "0"), (27, "27 (shorter than a header)"),
                        (33554437, "33554437 (one over the limit)"),
                        (0xFFFFFFFF, "0xffffffff")):
        conn = Conn(h.sock)
        try:
            conn.send_maybe_refused(u32(value) + b"\0" * 24)
            tap.ok(conn.expect_eof(), "length word %s: disconnected without an answer" % what)
        finally:
            conn.close()
    tap.ok(h.log_has("invalid message length"), "the daemon logs the invalid length")
    c.check_unharmed("bad length words")


def truncated(c):
    tap, h = c.tap, c.h
    # The length word promises 100 bytes; 60 come, then the client shuts its side.
    conn = Conn(h.sock)
    try:
        msg = frame(LS_PROG, 1, 8, xstring("/x" * 40))
        conn.send_raw(u32(100) + msg[4:60])
        conn.sock.shutdown(socket.SHUT_WR)
        tap.ok(conn.expect_eof(), "a message cut short by EOF: disconnected, no answer")
    finally:
        conn.close()
    # The length word is consistent but the payload ends inside a field.
    conn = Conn(h.sock)
    try:
        payload = owner("t", 3, c.probe_owner)[:-6]
        conn.send_raw(frame(LS_PROG, 1, 1, payload))
        tap.ok(conn.expect_eof(), "a payload that ends inside a field: disconnected, no answer")
    finally:
        conn.close()
    # Trailing bytes after a complete payload are as malformed as missing ones.
    conn = Conn(h.sock)
    try:
        conn.send_raw(frame(LS_PROG, 1, 8, xstring(h.lockspace) + u32(0)))
        tap.ok(conn.expect_eof(), "a payload with trailing bytes: disconnected, no answer")
    finally:
        conn.close()
    c.check_unharmed("truncated messages")


def wrong_program_version_procedure(c):
    tap, h = c.tap, c.h
    conn = Conn(h.sock)
    try:
        cases = [
            ("unknown program", (0x20000001, 1, 1), "Cannot find program 536870913 version 1"),
            ("wrong version of the lockspace program", (LS_PROG, 2, 1),
             "Cannot find program 245874415 version 2"),
            ("wrong version of the extension program", (EXT_PROG, 99, 1),
             "Cannot find program 1447906379 version 99"),
            ("unknown procedure", (LS_PROG, 1, 42), "unknown procedure: 42"),
            ("negative procedure", (LS_PROG, 1, -7), "unknown procedure: -7"),
        ]
        for what, (prog, vers, proc), message in cases:
            err = error_of(*conn.call(prog, vers, proc, b""))
            tap.ok(err is not None and err[0] == VIR_ERR_RPC and err[1] == VIR_FROM_RPC and
                   message in err[2], "%s: VIR_ERR_RPC '%s'" % (what, message), err)
        err = error_of(*conn.call(LS_PROG, 1, 8, xstring(h.lockspace), mtype=1))
        tap.ok(err is not None and err[0] == VIR_ERR_RPC and "unexpected message type" in err[2],
               "a REPLY sent as a call: VIR_ERR_RPC 'unexpected message type'", err)
        err = error_of(*conn.call(LS_PROG, 1, 8, xstring(h.lockspace), status=1))
        tap.ok(err is not None and err[0] == VIR_ERR_RPC, "a call with status ERROR: VIR_ERR_RPC",
               err)
        err = error_of(*conn.call(EXT_PROG, 1, 3, u32(0) + u32(1) + u32(0)))
        tap.ok(err is not None and err[0] == VIR_ERR_OPERATION_DENIED,
               "LIST on the main socket: VIR_ERR_OPERATION_DENIED", err)
        tap.ok(ls_register(conn, "still", 4, c.probe_owner) is None,
               "the same connection still works after the refused calls")
    finally:
        conn.close()
    c.check_unharmed("wrong program/version/procedure")


def string_bounds(c):
    tap, h = c.tap, c.h
    conn = Conn(h.sock)
    try:
        tap.ok(ls_register(conn, "s", 6, c.probe_owner) is None, "string bounds: REGISTER")
        err = ls_acquire(conn, h.lockspace, "n" * 65536)
        tap.ok(err is not None and err[0] == VIR_ERR_INVALID_ARG,
               "a name of exactly 65536 bytes: decoded, refused with VIR_ERR_INVALID_ARG",
               err)
        err = error_of(*conn.call(LS_PROG, 1, 8, xstring("/" + "p" * 65535)))
        tap.ok(err is not None and err[0] == VIR_ERR_INVALID_ARG,
               "a lockspace path of 65536 bytes is refused with VIR_ERR_INVALID_ARG", err)
    except Closed:
        tap.ok(False, "the daemon dropped a connection whose strings were within bounds")
    finally:
        conn.close()
    conn = Conn(h.sock)
    try:
        conn.send_raw(frame(LS_PROG, 1, 8, xstring("/" + "q" * 65536)))
        tap.ok(conn.expect_eof(), "a string of 65537 bytes: disconnected, no answer")
    finally:
        conn.close()
    conn = Conn(h.sock)
    try:
        # A length claiming 4 GiB inside a small message.
        conn.send_raw(frame(LS_PROG, 1, 8, u32(0xFFFFFFF0) + b"abcd"))
        tap.ok(conn.expect_eof(), "a string length of 0xfffffff0: disconnected, no answer")
    finally:
        conn.close()
    conn = Conn(h.sock)
    try:
        # An array count over the bound (BATCH_ACQUIRE: at most 4096 resources).
        body = owner("a", 1, c.probe_owner) + u32(4097)
        conn.send_raw(frame(EXT_PROG, 1, 1, body))
        tap.ok(conn.expect_eof(), "a batch of 4097 resources: disconnected, no answer")
    finally:
        conn.close()
    c.check_unharmed("strings over the bound")


def traversal(c):
    tap, h = c.tap, c.h
    outside = os.path.join(h.tmp, "outside")
    with open(outside, "w") as f:
        f.write("precious\n")
    os.symlink(outside, os.path.join(h.lockspace, "link"))
    conn = Conn(h.sock)
    try:
        tap.ok(ls_register(conn, "t", 7, c.probe_owner) is None, "traversal: REGISTER")
        for name in ("..", ".", "../outside", "a/b", "/abs", ""):
            err = ls_acquire(conn, h.lockspace, name)
            tap.ok(err is not None and err[0] == VIR_ERR_INVALID_ARG,
                   "resource name %r is refused with VIR_ERR_INVALID_ARG" % name, err)
        for proc, label in ((4, "CREATE_RESOURCE"), (5, "DELETE_RESOURCE")):
            err = ls_resource(conn, proc, h.lockspace, "../outside")
            tap.ok(err is not None and err[0] == VIR_ERR_INVALID_ARG,
                   "%s of '../outside' is refused" % label, err)
        for path in (h.tmp + "/ls/../escape", h.tmp + "/./x", "relative/path", h.tmp + "/a/.."):
            conn2 = Conn(h.sock)
            try:
                err = error_of(*conn2.call(LS_PROG, 1, 8, xstring(path)))
            finally:
                conn2.close()
            tap.ok(err is not None and err[0] == VIR_ERR_INVALID_ARG,
                   "CREATE_LOCKSPACE %r is refused with VIR_ERR_INVALID_ARG" % path, err)
        tap.ok(not os.path.exists(h.tmp + "/escape") and not os.path.exists(h.tmp + "/a"),
               "the refused lockspaces were not created")
        err = ls_acquire(conn, h.lockspace, "link")
        tap.ok(err is not None, "a lease file that is a symlink is refused", err)
        with open(outside) as f:
            content = f.read()
        tap.ok(content == "precious\n" and not ofd_locked(outside),
               "the symlink's target was neither written nor locked", repr(content))
        err = ls_acquire(conn, "", "/etc/../" + outside.lstrip("/"), 0)
        tap.ok(err is None, "the default lockspace takes an absolute disk path (direct mode)", err)
        tap.ok(ls_release(conn, "", "/etc/../" + outside.lstrip("/")) is None,
               "and releases it")
    finally:
        conn.close()
    for what, lockspace, name in (("a NUL in the name", h.lockspace, b"vic\0tim"),
                                  ("a NUL in the lockspace", h.lockspace.encode() + b"\0/x",
                                   b"victim")):
        conn = Conn(h.sock)
        try:
            ls_register(conn, "t", 7, c.probe_owner)
            conn.send_raw(frame(LS_PROG, 1, 6, xstring(lockspace) + xstring(name) + u32(2), 9))
            tap.ok(conn.expect_eof(), "%s: disconnected, no answer" % what)
        finally:
            conn.close()
    c.check_unharmed("path traversal")


def half_message_stall(c):
    tap, h = c.tap, c.h
    msg = frame(LS_PROG, 1, 1, owner("stall", 8, c.probe_owner) + u32(0), serial=5)
    word_only = Conn(h.sock)
    half = Conn(h.sock)
    try:
        word_only.send_raw(msg[:2])
        half.send_raw(msg[:len(msg) // 2])
        # The stalled clients hold no slot in the loop: others are served meanwhile.
        c.check_unharmed("half a message, then a stall", attackers_open=2)
        half.send_raw(msg[len(msg) // 2:])
        hdr, body = half.read_reply()
        tap.ok(hdr[4] == 5 and hdr[5] == OK,
               "the stalled client's call is answered once its rest arrives", hdr)
        word_only.send_raw(msg[2:])
        hdr, body = word_only.read_reply()
        tap.ok(hdr[4] == 5 and hdr[5] == OK,
               "a client stalled inside the length word is answered too", hdr)
    finally:
        word_only.close()
        half.close()
    c.check_unharmed("stalled clients after completing")


def too_many_clients(c):
    tap, h = c.tap, c.h
    # Main socket: the victim's holder connection is one of the MAX_CLIENTS.
    idle = []
    try:
        for i in range(MAX_CLIENTS - 1):
            conn = Conn(h.sock)
            idle.append(conn)
            tap.ok(ls_register(conn, "idle", 10 + i, c.probe_owner) is None,
                   "client %d of %d is served" % (i + 2, MAX_CLIENTS))
        extra = Conn(h.sock)
        try:
            extra.send_maybe_refused(frame(LS_PROG, 1, 1, owner("x", 9, c.probe_owner) + u32(0)))
            tap.ok(extra.expect_eof(), "client %d (over max_clients) is disconnected unanswered"
                   % (MAX_CLIENTS + 1))
        finally:
            extra.close()
        tap.ok(h.log_has("clients (max)"), "the daemon logs the refusal", h.log_tail(5))
        # Free one slot; a call on a younger connection proves the daemon saw the hangup
        # (older connections are handled first in a poll round).
        idle.pop(0).close()
        tap.ok(ls_register(idle[-1], "idle", 30, c.probe_owner) is None,
               "the remaining clients are still served")
        again = Conn(h.sock)
        try:
            tap.ok(ls_register(again, "again", 31, c.probe_owner) is None,
                   "once a client left, a new one is served")
        finally:
            again.close()
    finally:
        for conn in idle:
            conn.close()
    # The admin socket has its own limit.
    admins = []
    try:
        for _ in range(3):
            conn = Conn(h.admin)
            admins.append(conn)
            status, _ = conn.call(EXT_PROG, 1, 4)
        extra = Conn(h.admin)
        try:
            extra.send_maybe_refused(frame(EXT_PROG, 1, 4))
            tap.ok(extra.expect_eof(), "admin client 4 (over admin_max_clients 3) is disconnected")
        finally:
            extra.close()
    finally:
        for conn in admins:
            conn.close()
    # Hangups of the closed idle clients: a fresh call on a new connection is handled after.
    c.check_unharmed("more clients than max_clients")


def request_flood(c):
    tap, h = c.tap, c.h
    n = 3000
    flood = Conn(h.sock)
    replies = []
    failure = []

    def writer():
        try:
            for i in range(n):
                flood.send_raw(frame(LS_PROG, 1, 1, owner("f", 40, c.probe_owner) + u32(0), i))
        except OSError as exc:
            failure.append(repr(exc))

    try:
        thread = threading.Thread(target=writer)
        thread.start()
        # While the flood is being written (and not yet read), others are served.
        ok, fds, details = c.probe()
        tap.ok(ok, "during a flood of %d pipelined calls, another client is served" % n, details)
        for _ in range(n):
            hdr, _ = flood.read_reply()
            replies.append((hdr[4], hdr[5]))
        thread.join()
        tap.ok(not failure, "the flood was accepted", failure)
        tap.ok(replies == [(i, OK) for i in range(n)],
               "every flooded call is answered, once, in order (%d replies)" % len(replies))
    finally:
        flood.close()
    # A flood that never reads its replies: the daemon stops reading it once the replies back up.
    glutton = Conn(h.sock)
    try:
        glutton.sock.setblocking(False)
        message = frame(LS_PROG, 1, 1, owner("g", 41, c.probe_owner) + u32(0))
        sent = 0
        blocked = False
        for _ in range(200000):
            try:
                glutton.sock.send(message)
                sent += 1
            except BlockingIOError:
                blocked = True
                break
        tap.ok(blocked, "a client that never reads is pushed back (its socket fills after %d calls)"
               % sent)
        c.check_unharmed("a client flooding without reading", attackers_open=1)
    finally:
        glutton.close()
    # Connection churn: many connect/close cycles leave nothing behind.  The daemon accepts
    # new connections before it handles hangups in a poll round, so closed-but-unhandled
    # connections still count against max_clients: every third one, a call on a younger
    # connection makes sure the hangups were handled (otherwise the probe is refused).
    synced = 0
    for i in range(300):
        conn = Conn(h.sock)
        if i % 3 == 0:
            conn.send_raw(frame(LS_PROG, 1, 8, xstring(h.lockspace))[:10])
        conn.close()
        if i % 3 == 2:
            sync = Conn(h.sock)
            try:
                synced += ls_register(sync, "churn", 70, c.probe_owner) is None
            except Closed:
                pass
            finally:
                sync.close()
    tap.ok(synced == 100, "300 connections opened and dropped; the 100 calls between them "
           "were answered (%d)" % synced)
    c.check_unharmed("300 connections opened and dropped")


def fds_passed(c):
    tap, h = c.tap, c.h
    conn = Conn(h.sock)
    try:
        devnull = [os.open("/dev/null", os.O_RDONLY) for _ in range(8)]
        msg = frame(LS_PROG, 1, 1, owner("fds", 50, c.probe_owner) + u32(0))
        conn.sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                   struct.pack("%di" % len(devnull), *devnull))])
        for fd in devnull:
            os.close(fd)
        hdr, _ = conn.read_reply()
        tap.ok(hdr[5] == OK, "a call carrying 8 descriptors (SCM_RIGHTS) is answered")
    finally:
        conn.close()
    c.check_unharmed("descriptors passed with a call")


def peer_vanishes(c):
    tap, h = c.tap, c.h
    # A client sends a call and resets the connection at once: the reply's send fails
    # (EPIPE/ECONNRESET), which must never raise SIGPIPE in the daemon.  Each round ends with
    # a call on a younger connection, so the daemon has handled the reset before the next
    # round (and the max_clients count never sees more than three of them at once).
    answered = 0
    for i in range(20):
        conn = Conn(h.sock)
        conn.send_raw(frame(EXT_PROG, 1, 1, batch1_args(owner("v", 60, c.probe_owner), [])))
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        sync = Conn(h.sock)
        try:
            if ls_register(sync, "sync", 61 + i, c.probe_owner) is None:
                answered += 1
        finally:
            sync.close()
    tap.ok(answered == 20, "20 clients reset their connection before reading their reply; "
           "the daemon answered the next client each time (%d/20)" % answered)
    c.check_unharmed("peers vanishing before their reply")


def main():
    if os.geteuid() != 0:
        skip_all("needs root (a privileged daemon, and a client run as nobody)")
    tap = Tap()
    h = Harness("hostile", ["max_clients = %d" % MAX_CLIENTS, "admin_max_clients = 3"])
    keep = False
    try:
        os.makedirs(h.lockspace, mode=0o700)
        h.start()
        h.spawn_holder("victim")
        c = Ctx(tap, h)
        c.baseline()
        tap.ok(ofd_locked(c.victim_file), "the victim's lease is locked before the attacks")
        for attack in (non_root_peer, restricted, oversized_and_bad_lengths, truncated,
                       wrong_program_version_procedure, string_bounds, traversal,
                       half_message_stall, too_many_clients, request_flood, fds_passed,
                       peer_vanishes):
            tap.diag("---- %s" % attack.__name__)
            try:
                attack(c)
            except (OSError, Closed, ValueError, RuntimeError) as exc:
                tap.ok(False, "%s ran to its end" % attack.__name__, repr(exc))
                if not h.alive():
                    break
    except (OSError, RuntimeError) as exc:
        tap.ok(False, "set-up", repr(exc))
    finally:
        keep = tap.failed > 0 and bool(os.environ.get("VML_KEEP_TMP"))
        if tap.failed:
            tap.diag("daemon log tail:\n" + h.log_tail(30))
        h.cleanup(keep)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
