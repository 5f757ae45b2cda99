#!/usr/bin/env python3
# vml_rawclient.py: a minimal raw client of the lockspace program (0x0EA7BEEF v1) for scenario tests.
"""Speak virtlockd's lockspace program over one UNIX-socket connection, the way a
misbehaving (or merely curious) QEMU could with the holder connection it inherited.

    vml_rawclient.py --socket PATH [--ignore-sigterm] STEP...

Steps run in order on ONE connection; each call prints one line on stdout:
    ok                                  the daemon replied with status OK
    error CODE DOMAIN MESSAGE           the daemon replied with an error payload

    register NAME ID PID UUID   REGISTER; PID "self" = this process (a holder connection)
    restrict                    RESTRICT
    acquire LOCKSPACE NAME FLAGS   ACQUIRE_RESOURCE ("" = default lockspace; FLAGS 1 shared, 2 autocreate)
    release LOCKSPACE NAME      RELEASE_RESOURCE
    create-lockspace PATH       CREATE_LOCKSPACE
    hold                        print "ready"; then for each stdin line: "close" closes the
                                connection and prints "closed"; at end of input, wait forever
                                (so the test decides when this process dies)

With --ignore-sigterm, SIGTERM is caught, reported as a "sigterm" line and otherwise ignored,
so only SIGKILL ends the process.  Exit status: 0 when every step ran (whatever the daemon
answered), 2 for a usage error, 3 for a transport error (message on stderr).
"""

import os
import signal
import socket
import struct
import sys
import uuid as uuidlib

PROGRAM = 0x0EA7BEEF
VERSION = 1
PROC = {"register": 1, "restrict": 2, "acquire": 6, "release": 7, "create-lockspace": 8}
CALL, REPLY = 0, 1
STATUS_OK, STATUS_ERROR = 0, 1


def xdr_uint(value):
    return struct.pack(">I", value)


def xdr_string(text):
    data = text.encode()
    return xdr_uint(len(data)) + data + b"\0" * (-len(data) % 4)


class Reader:
    """Sequential XDR decoding of one reply payload; raises ValueError when it runs short."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, size):
        if self.pos + size > len(self.data):
            raise ValueError("reply payload truncated")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def int32(self):
        return struct.unpack(">i", self.take(4))[0]

    def string(self):
        size = struct.unpack(">I", self.take(4))[0]
        text = self.take(size).decode(errors="replace")
        self.take(-size % 4)
        return text

    def optional_string(self):
        return self.string() if self.int32() else None


class Connection:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.serial = 0

    def recv_exact(self, size):
        chunks = []
        while size:
            chunk = self.sock.recv(size)
            if not chunk:
                raise ConnectionError("daemon closed the connection")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def call(self, proc, payload):
        """Send one call; return None on success or (code, domain, message) on an error reply."""
        header = struct.pack(">IIiiIi", PROGRAM, VERSION, proc, CALL, self.serial, STATUS_OK)
        body = header + payload
        self.sock.sendall(struct.pack(">I", len(body) + 4) + body)
        length = struct.unpack(">I", self.recv_exact(4))[0]
        if length < 28:
            raise ConnectionError("reply length %d is shorter than a header" % length)
        reply = self.recv_exact(length - 4)
        prog, vers, rproc, rtype, serial, status = struct.unpack(">IIiiIi", reply[:24])
        if (prog, vers, rproc, rtype, serial) != (PROGRAM, VERSION, proc, REPLY, self.serial):
            raise ConnectionError("reply header %r does not answer call %d" %
                                  ((prog, vers, rproc, rtype, serial), self.serial))
        self.serial += 1
        if status == STATUS_OK:
            if len(reply) != 24:
                raise ConnectionError("success reply carries %d payload bytes" % (len(reply) - 24))
            return None
        err = Reader(reply[24:])
        code = err.int32()
        domain = err.int32()
        message = err.optional_string()
        return code, domain, message if message is not None else ""

    def close(self):
        self.sock.close()


def encode_step(name, args):
    """Return the payload of one call step; raises ValueError on bad arguments."""
    if name == "register":
        if len(args) != 4:
            raise ValueError("register needs NAME ID PID UUID")
        dom_name, dom_id, pid, dom_uuid = args
        pid_value = os.getpid() if pid == "self" else int(pid)
        return (uuidlib.UUID(dom_uuid).bytes + xdr_string(dom_name) + xdr_uint(int(dom_id)) +
                xdr_uint(pid_value) + xdr_uint(0))
    if name == "restrict":
        if args:
            raise ValueError("restrict takes no arguments")
        return xdr_uint(0)
    if name == "acquire":
        if len(args) != 3:
            raise ValueError("acquire needs LOCKSPACE NAME FLAGS")
        return xdr_string(args[0]) + xdr_string(args[1]) + xdr_uint(int(args[2]))
    if name == "release":
        if len(args) != 2:
            raise ValueError("release needs LOCKSPACE NAME")
        return xdr_string(args[0]) + xdr_string(args[1]) + xdr_uint(0)
    if name == "create-lockspace":
        if len(args) != 1:
            raise ValueError("create-lockspace needs PATH")
        return xdr_string(args[0])
    raise ValueError("unknown step '%s'" % name)


def parse_steps(words):
    """Split the command line into (name, args) steps by the known step names."""
    steps = []
    for word in words:
        if word in PROC or word == "hold":
            steps.append((word, []))
        elif not steps:
            raise ValueError("'%s' is not a step" % word)
        else:
            steps[-1][1].append(word)
    return steps


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def hold(conn):
    say("ready")
    for line in sys.stdin:
        if line.strip() == "close" and conn is not None:
            conn.close()
            conn = None
            say("closed")
    while True:
        signal.pause()


def main(argv):
    args = argv[1:]
    ignore_sigterm = False
    path = None
    while args and args[0].startswith("--"):
        option = args.pop(0)
        if option == "--socket" and args:
            path = args.pop(0)
        elif option == "--ignore-sigterm":
            ignore_sigterm = True
        else:
            sys.stderr.write("vml_rawclient: bad option '%s'\n" % option)
            return 2
    if path is None:
        sys.stderr.write("vml_rawclient: --socket PATH is required\n")
        return 2
    try:
        steps = [(name, rest, None if name == "hold" else encode_step(name, rest))
                 for name, rest in parse_steps(args)]
    except ValueError as exc:
        sys.stderr.write("vml_rawclient: %s\n" % exc)
        return 2
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, lambda signum, frame: say("sigterm"))
    try:
        conn = Connection(path)
        for name, rest, payload in steps:
            if name == "hold":
                hold(conn)
            result = conn.call(PROC[name], payload)
            if result is None:
                say("ok")
            else:
                say("error %d %d %s" % result)
        conn.close()
    except (OSError, ConnectionError, ValueError) as exc:
        sys.stderr.write("vml_rawclient: %s: %s\n" % (path, exc))
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
