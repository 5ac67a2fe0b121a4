#!/usr/bin/env bash
# Hook decision latency as Claude Code sees it: one whole
# `steward hook pre-tool-use --run-dir DIR` process per tool call, over the policy case table
# (tests/data/policy_table.rs). Prints median, p90, p99 and max; then the hostile table
# (tests/data/hostile_table.rs: deep nesting of every construct, 1 MB commands, 10,000-part
# chains, long paths) with each input's median and slowest answer, and the slowest as a ratio to
# the ordinary median. Exits 1 if the median is above 5 ms, an answer differs from the table, a
# hostile input is not denied, or the slowest hostile answer is above 200 ms.
#
#   STEWARD_BIN=target/release/steward bench/hook.sh      # default binary
#   ROUNDS=5 bench/hook.sh                                # more calls per case
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${STEWARD_BIN:-target/release/steward}"
ROUNDS="${ROUNDS:-3}"
if [ ! -x "$BIN" ]; then
  echo "no executable at $BIN: run 'cargo build --release' or set STEWARD_BIN" >&2
  exit 1
fi
exec cargo run --quiet --release --example hook_bench -- --bin "$BIN" --rounds "$ROUNDS"
