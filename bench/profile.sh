#!/bin/bash
# bench/profile.sh — where Gannet's time goes on the accept path (see bench/README.md, Profiling).
#   bench/profile.sh [SESSIONS] [N] [SIZE]      defaults: 20 3000 4096
# Uses the release gannet in build-bench/ (run `make bench` or build it first), GANNET_PORT /
# GANNET_TLS_PORT / DNS_PORT as in bench.py; output in $BENCH_OUT (default
# /var/tmp/gannet-bench-results/profile-<ts>/profile.txt). Needs perf and smtp-source.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${BENCH_OUT:-/var/tmp/gannet-bench-results/profile-$(date +%Y%m%d-%H%M%S)}
BIN=$ROOT/${BENCH_BUILD:-build-bench}/gannet
[ -x "$BIN" ] || { echo "bench/profile.sh: no $BIN (run make bench first)" >&2; exit 1; }
command -v perf >/dev/null || { echo "bench/profile.sh: perf is not installed" >&2; exit 1; }
[ -x /usr/sbin/smtp-source ] || "$ROOT/bench/postfix.sh" install
exec /usr/bin/python3 "$ROOT/bench/bench.py" --gannet "$BIN" --out "$OUT" --profile "${1:-20}" "${2:-3000}" "${3:-4096}"
