#!/usr/bin/env python3
# test_bad_startup.py: vmlockd given bad command lines, configs, activation sockets, pid files and socket paths (TAP): a clear error, exit 1, nothing left behind.
"""Each case starts vmlockd in the foreground (our child) with one bad input and waits, with
a bound, for either its exit or its READY=1 on a NOTIFY_SOCKET datagram (a start that should
not have happened is ended at once, by its pid).  A case passes when the daemon exited with
status 1 (not a signal), printed an error naming the bad input, left no socket behind and
did not touch a file it was pointed at by mistake.
"""

import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vml_hostile import Tap, skip_all  # noqa: E402

START_BOUND = 30.0


class Case:
    def __init__(self, tmp, vmlockd):
        self.tmp = tmp
        self.vmlockd = vmlockd
        self.sock = os.path.join(tmp, "sock")
        self.admin = os.path.join(tmp, "admin-sock")
        self.pidfile = os.path.join(tmp, "vmlockd.pid")

    def conf(self, *lines, main=None, admin=None, name="vmlockd.conf"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write('unix_sock_path = "%s"\n' % (main or self.sock))
            f.write('admin_unix_sock_path = "%s"\n' % (admin or self.admin))
            f.write('log_outputs = "3:stderr"\n')
            for line in lines:
                f.write(line + "\n")
        return path

    def run(self, args, env_extra=None, activation=(), shell_listen_pid=False):
        """(status, stderr, started): status is the exit status (negative: a signal).
        activation: descriptors of ours the daemon gets as 3, 4, ... (socket activation)."""
        notify_path = os.path.join(self.tmp, "notify")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        env = dict(os.environ)
        env["NOTIFY_SOCKET"] = notify_path
        env.update(env_extra or {})
        cmd = [self.vmlockd] + args
        if shell_listen_pid:
            # LISTEN_PID must be the daemon's own pid: the shell's, which exec keeps.
            cmd = ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"'] + cmd
        errpath = os.path.join(self.tmp, "stderr")
        targets = tuple(range(3, 3 + len(activation)))

        def place_activation_fds():
            # In the child, before exec: ours may sit anywhere, the daemon wants 3, 4, ...
            # (first moved clear of the targets, so no dup2 clobbers a later source).
            for i, fd in enumerate(activation):
                os.dup2(fd, 100 + i)
            for i, target in enumerate(targets):
                os.dup2(100 + i, target)

        with open(errpath, "w") as err:
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err, pass_fds=targets,
                                    preexec_fn=place_activation_fds if activation else None)
        started = False
        try:
            pidfd = os.pidfd_open(proc.pid)
            r, _, _ = select.select([notify, pidfd], [], [], START_BOUND)
            os.close(pidfd)
            if notify in r and b"READY=1" in notify.recv(4096):
                started = True
        finally:
            notify.close()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        with open(errpath, errors="replace") as f:
            return proc.returncode, f.read().strip(), started


def check(tap, case, what, result, fragments, must_not_exist=()):
    status, stderr, started = result
    ok = (not started and status == 1 and all(frag in stderr for frag in fragments) and
          not any(os.path.exists(p) for p in must_not_exist))
    tap.ok(ok, "%s: exit 1 with an error naming it" % what,
           "status %r, started %r, stderr: %s\nwanted: %r" % (status, started, stderr, fragments))
    for path in must_not_exist:
        if os.path.lexists(path):
            os.unlink(path)


def main():
    if os.geteuid() != 0:
        skip_all("needs root (a privileged daemon)")
    vmlockd = os.environ.get("VMLOCKD", "")
    if not vmlockd or not os.path.exists(vmlockd):
        skip_all("VMLOCKD is not built")
    tap = Tap()
    tmp = tempfile.mkdtemp(prefix="vml-badstart.")
    try:
        c = Case(tmp, vmlockd)
        good = c.conf(name="good.conf")
        sockets = (c.sock, c.admin)

        # ---- command line
        check(tap, c, "an unknown option",
              c.run(["--no-such-option", "-f", good, "-p", c.pidfile]), ["no-such-option"], sockets)
        for value in ("abc", "-1", "2147484", "12x", ""):
            check(tap, c, "--timeout '%s'" % value,
                  c.run(["-t", value, "-f", good, "-p", c.pidfile]), ["'%s'" % value if value else "timeout"],
                  sockets)
        missing = os.path.join(tmp, "missing.conf")
        check(tap, c, "a config file that does not exist",
              c.run(["-f", missing, "-p", c.pidfile]), [missing], sockets)

        # ---- the config file
        path = c.conf("max_clients = ten")
        check(tap, c, "a config syntax error", c.run(["-f", path, "-p", c.pidfile]),
              [path + ":4"], sockets)
        path = c.conf("max_clients = 0")
        check(tap, c, "max_clients = 0", c.run(["-f", path, "-p", c.pidfile]),
              ["max_clients"], sockets)
        path = c.conf("no_such_key = 1")
        check(tap, c, "an unknown key", c.run(["-f", path, "-p", c.pidfile]),
              ["no_such_key"], sockets)
        long_path = os.path.join(tmp, "s" * 120)
        path = c.conf(main=long_path)
        check(tap, c, "a socket path longer than sun_path", c.run(["-f", path, "-p", c.pidfile]),
              ["unix_sock_path"], sockets + (long_path,))

        # ---- socket paths
        victim = os.path.join(tmp, "precious")
        with open(victim, "w") as f:
            f.write("precious\n")
        path = c.conf(main=victim)
        result = c.run(["-f", path, "-p", c.pidfile])
        check(tap, c, "a socket path that is a regular file", result, [victim], (c.admin,))
        with open(victim) as f:
            tap.ok(f.read() == "precious\n", "the regular file at the socket path is untouched")
        path = c.conf(main=os.path.join(victim, "sock"))
        check(tap, c, "a socket path below a regular file", c.run(["-f", path, "-p", c.pidfile]),
              [victim], (c.admin,))
        path = c.conf(main=c.sock, admin=c.sock)
        status, stderr, started = c.run(["-f", path, "-p", c.pidfile])
        tap.ok(not started and status == 1 and "same path" in stderr,
               "the same path for the main and the admin socket is refused",
               "status %r, started %r, stderr: %s" % (status, started, stderr))
        for p in sockets:
            if os.path.lexists(p):
                os.unlink(p)

        # ---- pid file
        # (vmlockd creates the pid file's own directory, one level, as for $XDG_RUNTIME_DIR.)
        badpid = os.path.join(tmp, "no-dir", "sub", "vmlockd.pid")
        check(tap, c, "a pid file two missing directories down",
              c.run(["-f", good, "-p", badpid]), [badpid], sockets)
        check(tap, c, "a pid file below a regular file",
              c.run(["-f", good, "-p", os.path.join(victim, "x.pid")]), [victim], sockets)

        # ---- socket activation
        check(tap, c, "LISTEN_FDS=17",
              c.run(["-f", good, "-p", c.pidfile], {"LISTEN_FDS": "17"}, shell_listen_pid=True),
              ["LISTEN_FDS=17"], sockets)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(os.path.join(tmp, "activated"))
        listener.listen(4)
        try:
            check(tap, c, "LISTEN_FDNAMES naming an unknown socket",
                  c.run(["-f", good, "-p", c.pidfile],
                        {"LISTEN_FDS": "1", "LISTEN_FDNAMES": "bogus.socket"},
                        activation=(listener.fileno(),), shell_listen_pid=True),
                  ["bogus.socket"], sockets)
            check(tap, c, "LISTEN_FDNAMES naming fewer sockets than LISTEN_FDS",
                  c.run(["-f", good, "-p", c.pidfile],
                        {"LISTEN_FDS": "2", "LISTEN_FDNAMES": "vmlockd.socket"},
                        activation=(listener.fileno(), listener.fileno()),
                        shell_listen_pid=True), ["LISTEN_FDNAMES"], sockets)
        finally:
            listener.close()
        with open(victim) as regular:
            status, stderr, started = c.run(["-f", good, "-p", c.pidfile], {"LISTEN_FDS": "1"},
                                            activation=(regular.fileno(),),
                                            shell_listen_pid=True)
        tap.ok(not started and status == 1 and stderr != "",
               "an activation descriptor that is not a listening socket is refused",
               "status %r, started %r, stderr: %s" % (status, started, stderr))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
