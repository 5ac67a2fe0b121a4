#!/usr/bin/env bash
# Idle `steward serve` (paused, token file, fresh state dir): samples VmRSS from /proc/PID/status
# and utime+stime from /proc/PID/stat once a second over SECS seconds after it is ready. Prints
# RSS median/max and CPU% over the window; exits 1 if the max RSS is over 20 MB or CPU ≥ 0.5%.
#
#   STEWARD_BIN=target/release/steward bench/idle.sh       # default binary
#   SECS=60 bench/idle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${STEWARD_BIN:-target/release/steward}"
SECS="${SECS:-20}"
if [ ! -x "$BIN" ]; then
  echo "no executable at $BIN: run 'cargo build --release' or set STEWARD_BIN" >&2
  exit 1
fi
BIN="$(realpath "$BIN")"
TMP="$(mktemp -d)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
printf 'bench-token-0123456789abcdef' > "$TMP/token"
mkdir -p "$TMP/workspace"
cat > "$TMP/steward.toml" <<TOML
workspace = "$TMP/workspace"
state_dir = "$TMP/state"
[serve]
paused = true
TOML
HOME="$TMP" RUST_LOG=warn "$BIN" --config "$TMP/steward.toml" serve --listen 127.0.0.1:0 \
  --webhook-token-file "$TMP/token" > "$TMP/out" 2> "$TMP/err" &
PID=$!
for _ in $(seq 100); do
  grep -q 'listening on http://' "$TMP/out" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { echo "steward serve exited:" >&2; cat "$TMP/err" >&2; exit 1; }
  sleep 0.1
done
URL="$(grep -o 'http://[^ ]*' "$TMP/out" | head -1)"
[ -n "$URL" ] || { echo "steward serve did not print its address" >&2; exit 1; }
curl -fsS "$URL/healthz" > /dev/null
sleep 1 # let start-up work (recovery, daemon.json) settle before the window opens
TICKS="$(getconf CLK_TCK)"
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
C0="$(cpu)"; T0="$(date +%s.%N)"
: > "$TMP/rss"
for _ in $(seq "$SECS"); do
  rss >> "$TMP/rss"
  sleep 1
done
C1="$(cpu)"; T1="$(date +%s.%N)"
THREADS="$(awk '/^Threads:/ {print $2}' "/proc/$PID/status")"
sort -n "$TMP/rss" > "$TMP/rss.sorted"
N="$(wc -l < "$TMP/rss.sorted")"
MED="$(sed -n "$(( (N + 1) / 2 ))p" "$TMP/rss.sorted")"
MAX="$(tail -1 "$TMP/rss.sorted")"
awk -v med="$MED" -v max="$MAX" -v c0="$C0" -v c1="$C1" -v t0="$T0" -v t1="$T1" -v hz="$TICKS" \
    -v n="$N" -v threads="$THREADS" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  cpu = (c1 - c0) / hz / (t1 - t0) * 100
  printf "idle steward serve (paused), %d samples over %.1f s, %d threads, load %s\n\n", n, t1 - t0, threads, load
  printf "| case | RSS median | RSS max | CPU %% |\n|---|---|---|---|\n"
  printf "| steward serve (idle) | %.1f MiB | %.1f MiB | %.2f %% |\n\n", med / 1024, max / 1024, cpu
  ok_rss = max / 1024 <= 20; ok_cpu = cpu < 0.5
  printf "%s RSS ≤ 20 MiB\n%s CPU < 0.5 %%\n", ok_rss ? "PASS" : "FAIL", ok_cpu ? "PASS" : "FAIL"
  exit !(ok_rss && ok_cpu)
}'
