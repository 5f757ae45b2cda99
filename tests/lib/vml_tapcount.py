#!/usr/bin/env python3
# vml_tapcount.py: count TAP test points (passed, failed, skipped) across a meson test run, from meson-logs/testlog.json.
"""Usage: vml_tapcount.py TESTLOG.JSON

Prints one line "PASSED FAILED SKIPPED" and, on stderr, one line per failure.  Every test
point of a TAP test counts: "ok" passed, "not ok" failed, "# SKIP" and "not ok # TODO" (a
known deviation, e.g. of libvirt's lockd.so in the conformance suite) skipped; a whole-script skip
("1..0 # SKIP reason") counts as one skip; a test that meson saw fail without any failing
test point (crash, timeout, bad plan) counts as one failure, so nothing is lost.
"""

import json
import re
import sys

POINT = re.compile(r"^(not ok|ok)\b[^#]*(#\s*(\w+))?", re.IGNORECASE)
SKIP_ALL = re.compile(r"^1\.\.0\s*#\s*skip", re.IGNORECASE)
PLAN = re.compile(r"^1\.\.\d+")


def is_tap(text):
    return any(POINT.match(line) or PLAN.match(line) for line in text.splitlines())


def count_tap(text):
    passed = failed = skipped = 0
    for line in text.splitlines():
        match = POINT.match(line)
        if match:
            directive = (match.group(3) or "").lower()
            if directive == "skip":
                skipped += 1
            elif directive == "todo" and match.group(1).lower() == "not ok":
                skipped += 1    # a known deviation (e.g. lockd.so's): listed, never a pass
            elif match.group(1).lower() == "ok":
                passed += 1
            else:
                failed += 1
        elif SKIP_ALL.match(line):
            skipped += 1
        elif line.startswith("Bail out!"):
            failed += 1
    return passed, failed, skipped


def main(path):
    passed = failed = skipped = 0
    with open(path) as log:
        for raw in log:
            if not raw.strip():
                continue
            test = json.loads(raw)
            result = test.get("result", "")
            if is_tap(test.get("stdout", "")):
                p, f, s = count_tap(test.get("stdout", ""))
            else:
                p = 1 if result in ("OK", "EXPECTEDFAIL") else 0
                s = 1 if result == "SKIP" else 0
                f = 0
            if result not in ("OK", "SKIP", "EXPECTEDFAIL") and f == 0:
                f = 1
            if f:
                sys.stderr.write("FAILED: %s (%s, %d failing point(s))\n" %
                                 (test.get("name"), result, f))
            passed, failed, skipped = passed + p, failed + f, skipped + s
    print(passed, failed, skipped)


if __name__ == "__main__":
    main(sys.argv[1])
