#!/usr/bin/env python3
# direct_fill.py: the daemon's VmRSS per held DIRECT-mode lease (vmlock-bench fill measures indirect-mode leases): BATCH_ACQUIRE of N image paths for one stand-in owner.
"""Usage: direct_fill.py DIR N

DIR holds a running vmlockd's pid file DIR/pid and main socket DIR/sock (same uid);
N empty image files are created under DIR/img and acquired in the default lockspace, the
disk named as libvirt names it (the path itself), for a `sleep` process as the owner.
Prints VmRSS before and after, the bytes per lease and the linear extrapolation to
100,000 leases.  The owner is killed at the end, which releases everything.  Needs
RLIMIT_NOFILE above N in the daemon.  Not a test: nothing is judged.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "hostile"))
from vml_hostile import Conn, EXT_PROG, owner, u32, xstring  # noqa: E402

BATCH_MAX = 4096


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    top, n = argv[1], int(argv[2])
    pid = int(open(os.path.join(top, "pid")).read())
    os.makedirs(os.path.join(top, "img"), exist_ok=True)
    paths = []
    for i in range(n):
        path = os.path.join(top, "img", "disk-%05d.img" % i)
        if not os.path.exists(path):
            open(path, "w").close()
        paths.append(path)
    holder = subprocess.Popen(["sleep", "600"])
    try:
        before = rss_kib(pid)
        for start in range(0, n, BATCH_MAX):
            chunk = paths[start:start + BATCH_MAX]
            resources = b"".join(xstring("") + xstring(p) + xstring(p) + u32(0) for p in chunk)
            payload = owner("direct-fill", 1, holder.pid) + u32(len(chunk)) + resources + u32(0)
            conn = Conn(os.path.join(top, "sock"))
            status, body = conn.call(EXT_PROG, 1, 1, payload)
            conn.sock.close()
            if status != 0:
                sys.exit("BATCH_ACQUIRE failed: %r" % body[:200])
        time.sleep(0.5)
        after = rss_kib(pid)
    finally:
        holder.kill()
    per_lease = (after - before) * 1024.0 / n
    print("direct-mode leases %d: VmRSS %d KiB -> %d KiB, %.1f bytes per lease, "
          "EXTRAPOLATED to 100,000 leases: %.1f MiB"
          % (n, before, after, per_lease, (before * 1024.0 + per_lease * 100000) / 1048576.0))


if __name__ == "__main__":
    main(sys.argv)
