#!/usr/bin/env python3
# vml_vgcheck.py: judge valgrind memcheck logs (one per process) for errors, leaks and descriptors left open at exit.
"""Usage: vml_vgcheck.py LOGDIR [DAEMON_PIDS_FILE [KILLED_PIDS_FILE]]

Every *.log in LOGDIR is one process (valgrind --log-file=...%p.log).  A log fails when:
  - its ERROR SUMMARY counts errors (invalid accesses, uninitialised values, and the leak
    kinds valgrind was told to count as errors);
  - it has no ERROR SUMMARY at all (the process did not exit normally: killed, crashed),
    unless the process is named in KILLED_PIDS_FILE (a test crashed it on purpose);
  - a descriptor the process opened itself is still open at exit (--track-fds=yes), in any
    process: the daemons that ran their loop (named in DAEMON_PIDS_FILE) and the short-lived
    parents of -d alike; inherited descriptors are not the process's doing.
Prints one line per problem and a summary; exit status 1 when any log fails.
"""

import os
import re
import sys

PREFIX = re.compile(r"^==(\d+)== ?")
SUMMARY = re.compile(r"ERROR SUMMARY: (\d+) errors")
OPEN_FD = re.compile(r"^Open (?:file descriptor|AF_UNIX socket|AF_INET socket|\w+ socket) (\d+)(.*)")


def leaked_fds(lines):
    """Descriptors (>2) listed as open at exit that were not inherited from the parent."""
    leaks = []
    in_fds = False
    current = None
    for line in lines:
        if line.startswith("FILE DESCRIPTORS:"):
            in_fds = True
            continue
        if not in_fds:
            continue
        match = OPEN_FD.match(line)
        if match:
            if current:
                leaks.append(current)
            current = (int(match.group(1)), line) if int(match.group(1)) > 2 else None
        elif "<inherited from parent>" in line:
            current = None
        elif line.startswith("HEAP SUMMARY") or line.startswith("LEAK SUMMARY"):
            break
    if current:
        leaks.append(current)
    return leaks


def read_pids(argv, index):
    if len(argv) <= index or not os.path.exists(argv[index]):
        return set()
    with open(argv[index]) as pids:
        return {line.strip() for line in pids if line.strip()}


def main(argv):
    logdir = argv[1]
    daemon_pids = read_pids(argv, 2)
    killed_pids = read_pids(argv, 3)
    problems = 0
    logs = sorted(name for name in os.listdir(logdir) if name.endswith(".log"))
    for name in logs:
        with open(os.path.join(logdir, name), errors="replace") as log:
            raw_lines = log.read().splitlines()
        lines = [PREFIX.sub("", raw) for raw in raw_lines]
        pid = next((m.group(1) for m in map(PREFIX.match, raw_lines) if m), None)
        summary = [int(m.group(1)) for m in map(SUMMARY.search, lines) if m]
        if not summary and pid in killed_pids:
            continue
        if not summary:
            print("%s: no ERROR SUMMARY (the process did not exit normally)" % name)
            problems += 1
        elif summary[-1]:
            print("%s: %d error(s)" % (name, summary[-1]))
            problems += 1
        for fd, line in leaked_fds(lines):
            role = "daemon" if pid in daemon_pids else "process"
            print("%s (%s): descriptor %d left open at exit: %s" % (name, role, fd, line))
            problems += 1
    print("valgrind: %d log(s), %d daemon(s), %d problem(s)" % (len(logs), len(daemon_pids),
                                                               problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
