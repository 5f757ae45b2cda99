#!/usr/bin/env python3
# vml_leases.py: flatten `vmlockctl --json list` (stdin) into one grep-able line per lease for the shell tests.
"""Each lease becomes one line:

    lockspace=L name=N disk=D mode=M pids=,P1,P2, domains=,NAME1,NAME2,

The commas around the pid and domain lists let a test match one holder exactly
(",4242,").  Lockspace is "" for the default (direct) lockspace.  Exit status 1, with a
message on stderr, when the input is not the JSON array vmlockctl documents.
"""

import json
import sys


def holder_fields(holder):
    owner = holder.get("owner", holder)
    pid = owner.get("pid", holder.get("pid"))
    domain = owner.get("domain", owner.get("name", holder.get("domain", "")))
    return str(pid), str(domain)


def lease_line(lease):
    mode = lease.get("mode")
    if mode is None:
        mode = "shared" if int(lease.get("flags", 0)) & 1 else "exclusive"
    holders = [holder_fields(h) for h in lease.get("holders", [])]
    return "lockspace=%s name=%s disk=%s mode=%s pids=,%s, domains=,%s," % (
        lease.get("lockspace", ""),
        lease.get("resource", lease.get("name", "")),
        lease.get("disk", ""),
        mode,
        ",".join(pid for pid, _ in holders),
        ",".join(domain for _, domain in holders))


def main():
    try:
        leases = json.load(sys.stdin)
        if isinstance(leases, dict):
            leases = leases.get("leases", [])
        for lease in leases:
            print(lease_line(lease))
    except (ValueError, AttributeError, TypeError) as exc:
        sys.stderr.write("vml_leases: not a vmlockctl --json list: %s\n" % exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
