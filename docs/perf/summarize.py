#!/usr/bin/env python3
# summarize.py: the performance targets of issue 3, read from the JSON of one or more docs/perf/compare.sh runs: each run's figure and the median across runs.
"""Usage: summarize.py RUNDIR [RUNDIR...]

Each RUNDIR holds the *.json files compare.sh wrote.  Prints one line per target with the
figure of every run and their median, and whether the median meets the target.  The figures
are reported, not judged beyond that comparison: nothing here is a test.
"""

import json
import os
import re
import statistics
import sys


def load(rundir, name):
    try:
        with open(os.path.join(rundir, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def direct_fill(rundir):
    """(leases, bytes per lease, MiB extrapolated to 100k) from direct-fill.txt, or None."""
    try:
        with open(os.path.join(rundir, "direct-fill.txt")) as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"direct-mode leases (\d+): VmRSS (\d+) KiB -> (\d+) KiB, ([0-9.]+) bytes per "
                  r"lease, EXTRAPOLATED to 100,000 leases: ([0-9.]+) MiB", text)
    return (int(m.group(1)), float(m.group(4)), float(m.group(5))) if m else None


def ratio(doc, num, den, scope, metric, field="median"):
    for r in (doc or {}).get("ratios", []):
        if (r["numerator"], r["denominator"], r["scope"], r["metric"]) == (num, den, scope, metric):
            return r[field]
    return None


def row(doc, part, scope, metric, field):
    for r in (doc or {}).get("rows", []):
        if (r["participant"], r["scope"], r["metric"]) == (part, scope, metric):
            return r[field]
    return None


def fill_scope(doc):
    for r in (doc or {}).get("rows", []):
        if r["scope"].startswith("+"):
            return r["scope"]
    return None


def fill_count(doc):
    scope = fill_scope(doc)
    return float(scope.split()[0].lstrip("+")) if scope else None


def rss_per_lease(doc):
    full = row(doc, "vmlockd", fill_scope(doc), "cycle", "daemon_rss_kib")
    empty = row(doc, "vmlockd", "empty", "cycle", "daemon_rss_kib")
    return (full - empty) * 1024.0 / fill_count(doc)


TARGETS = [
    # (label, how to read it from one run, "min"/"max" target, bound)
    ("1-disk cycle, lockd / vmlockd (median)",
     lambda d: ratio(d["latency"], "lockd", "vmlockd", "1 disk", "cycle"), "min", 2.0),
    ("1-disk cycle, vmlockd / floor, two-way run (median)",
     lambda d: ratio(d["floor"], "vmlockd", "floor", "1 disk", "cycle"), "max", 1.3),
    ("1-disk cycle, vmlockd / floor, three-way run (median)",
     lambda d: ratio(d["latency"], "vmlockd", "floor", "1 disk", "cycle"), "max", 1.3),
    ("256-disk cycle direct, lockd / vmlockd (median)",
     lambda d: ratio(d["disks-direct"], "lockd", "vmlockd", "K=256", "cycle"), "min", 10.0),
    ("256-disk cycle indirect, lockd / vmlockd (median)",
     lambda d: ratio(d["disks-indirect"], "lockd", "vmlockd", "K=256", "cycle"), "min", 10.0),
    ("vmlockd daemon CPU per 1-disk cycle, us, alone (fill: empty)",
     lambda d: row(d["fill"], "vmlockd", "empty", "cycle", "daemon_cpu_us_per_op"), "max", 30.0),
    ("vmlockd daemon CPU per 1-disk cycle, us, two-way run",
     lambda d: row(d["floor"], "vmlockd", "1 disk", "cycle", "daemon_cpu_us_per_op"), "max", 30.0),
    ("vmlockd daemon CPU per 1-disk cycle, us, three-way run",
     lambda d: row(d["latency"], "vmlockd", "1 disk", "cycle", "daemon_cpu_us_per_op"), "max", 30.0),
    ("floor daemon CPU per cycle, us, two-way run (reference)",
     lambda d: row(d["floor"], "floor", "1 disk", "cycle", "daemon_cpu_us_per_op"), None, None),
    ("vmlockd 1-disk cycle alone, median us (fill: empty)",
     lambda d: row(d["fill"], "vmlockd", "empty", "cycle", "median_us"), None, None),
    ("virtlockd CPU per 1-disk cycle, us (reference)",
     lambda d: row(d["latency"], "lockd", "1 disk", "cycle", "daemon_cpu_us_per_op"), None, None),
    ("many leases: leases held by the fill (the fd limit's bound)",
     lambda d: fill_count(d["fill"]), None, None),
    ("many leases, at the fill size: full / empty 1-disk cycle",
     lambda d: (row(d["fill"], "vmlockd", fill_scope(d["fill"]), "cycle", "median_us") or 0) /
               (row(d["fill"], "vmlockd", "empty", "cycle", "median_us") or 1), "max", 1.10),
    ("many leases, at the fill size: daemon VmRSS, MiB",
     lambda d: (row(d["fill"], "vmlockd", fill_scope(d["fill"]), "cycle", "daemon_rss_kib") or 0) / 1024.0,
     None, None),
    ("many leases: VmRSS per lease held, bytes (indirect fill)",
     lambda d: rss_per_lease(d["fill"]), None, None),
    ("many leases: RSS EXTRAPOLATED to 100k leases, MiB (indirect)",
     lambda d: ((row(d["fill"], "vmlockd", "empty", "cycle", "daemon_rss_kib") or 0) * 1024.0 +
                rss_per_lease(d["fill"]) * 100000) / 1048576.0, "max", 64.0),
    ("many leases: VmRSS per lease held, bytes (direct mode)",
     lambda d: d["direct-fill"][1], None, None),
    ("many leases: RSS EXTRAPOLATED to 100k leases, MiB (direct)",
     lambda d: d["direct-fill"][2], "max", 64.0),
    ("hand-off release->grant, vmlockd median, us",
     lambda d: row(d["handoff"], "vmlockd", "1 disk", "handoff", "median_us"), "max", 1000.0),
    ("hand-off release->grant, vmlockd p99, us",
     lambda d: row(d["handoff"], "vmlockd", "1 disk", "handoff", "p99_us"), "max", 1000.0),
    ("hand-off, lockd / vmlockd (median)",
     lambda d: ratio(d["handoff"], "lockd", "vmlockd", "1 disk", "handoff"), None, None),
    ("parallel P=4, lockd / vmlockd (median)",
     lambda d: ratio(d["parallel"], "lockd", "vmlockd", "P=4", "cycle"), None, None),
]


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    runs = []
    for rundir in argv[1:]:
        run = {name: load(rundir, name) for name in
               ("latency", "floor", "disks-direct", "disks-indirect", "handoff", "parallel",
                "fill")}
        run["direct-fill"] = direct_fill(rundir)
        runs.append(run)
    print("%-62s %s   %8s  %s" % ("target", "  ".join("run%-4d" % (i + 1) for i in range(len(runs))),
                                   "median", "verdict"))
    for label, read, kind, bound in TARGETS:
        values = []
        cells = []
        for run in runs:
            try:
                value = read(run)
            except (TypeError, ZeroDivisionError, KeyError):
                value = None
            cells.append("%7.2f" % value if value is not None else "      -")
            if value is not None:
                values.append(value)
        median = statistics.median(values) if values else None
        verdict = ""
        if median is not None and kind is not None:
            met = median >= bound if kind == "min" else median <= bound
            verdict = "%s (target %s %g)" % ("met" if met else "MISSED", ">=" if kind == "min" else "<=", bound)
        print("%-62s %s   %8s  %s" % (label, "  ".join(cells),
                                       "%.2f" % median if median is not None else "-", verdict))


if __name__ == "__main__":
    main(sys.argv)
