#!/usr/bin/env bash
# Webhook ingest on loopback: `steward serve` (paused, fresh state dir, router limits high) vs a
# bare axum handler (bearer check, JSON parse, 200) on the same machine, alternating round by
# round. Prints alerts/s (median of rounds), latency p50/p99, the ratio to the bare handler,
# alerts lost (non-200, or steward's routing events / steward_signals_total not summing to the
# alerts sent) and the CPU each server and the load generator used per alert; exits 1 if a
# target is missed (≥ 5000 alerts/s, p99 < 20 ms, ratio ≥ 0.5, 0 lost).
#
#   STEWARD_BIN=target/release/steward bench/webhook.sh     # the README numbers (a few seconds)
#   REQUESTS=60000 CONCURRENCY=64 ROUNDS=5 bench/webhook.sh
#   FINGERPRINTS=20000 ROUNDS=1 bench/webhook.sh          # every alert new: one queued job each
#   ROUTER_LIMITS=default FINGERPRINTS=20000 ROUNDS=1 bench/webhook.sh   # steward's own limits
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${STEWARD_BIN:-target/release/steward}"
if [ ! -x "$BIN" ]; then
  echo "no executable at $BIN: run 'cargo build --release' or set STEWARD_BIN" >&2
  exit 1
fi
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
exec cargo run --quiet --release --example webhook_bench -- --bin "$BIN" \
  --requests "${REQUESTS:-20000}" --concurrency "${CONCURRENCY:-32}" \
  --fingerprints "${FINGERPRINTS:-300}" --rounds "${ROUNDS:-3}"
