#!/bin/bash
# tests/fuzz/run-short.sh: the bounded fuzzing step of tools/check.sh: every libFuzzer target for SECONDS (default 20) each; exit 1 on any crash.
#
#   tests/fuzz/run-short.sh [SECONDS]      VML_FUZZ_DIR=DIR (default build-fuzz/ in the checkout)
#
# Needs clang and libFuzzer (libclang-rt-14-dev).  Takes SECONDS x 6 targets plus the first
# clang build (about 2-3 minutes; later runs only rebuild).  The grown corpora stay in
# VML_FUZZ_DIR/corpus, so each run continues where the last one stopped.  The last lines
# are tools/fuzz.sh's summary, one "fuzz: TARGET: ..." line per target.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
exec "$ROOT/tools/fuzz.sh" "${1:-20}"
