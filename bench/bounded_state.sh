#!/usr/bin/env bash
# Router state and memory under hostile alerts, through the real daemon (`steward serve`, paused,
# fresh state dir, default router limits). Two cases, each on a fresh state dir:
#
#   huge   ALERTS alerts (default 100), each with a distinct NAME_KIB (default 500) KiB
#          `alertname`, one alert per request (a request is at most 1 MiB);
#   many   STORM alerts (default 20000) with distinct 300-byte alertnames (over the subject cap)
#          and fingerprints, 100 per request: more subjects than `[router] max_subjects`;
#   worst  WORST subjects (default 12000) of 64 bytes (the longest kept verbatim as a key),
#          each firing 5 times with 64-byte fingerprints: every window of router.json full.
#
# For each: the decisions, the size of STATE/router.json, the largest job file and the event log,
# and VmRSS of the daemon idle before, after the alerts (once the state was saved), and after a
# restart on the same state dir. Prints a table; exits 1 if a bound is missed: router.json over
# 64 KiB (huge) or over 8 MiB (many, worst: the caps' worst case is about 5 MB), a job file
# over 256 KiB, or RSS after the restart over 24 MiB.
#
#   STEWARD_BIN=target/release/steward bench/bounded_state.sh
#   CASES=huge ALERTS=100 NAME_KIB=500 bench/bounded_state.sh
#   NO_LIMITS=1 bench/bounded_state.sh    # report only, exit 0 (an older binary's numbers)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${STEWARD_BIN:-target/release/steward}"
ALERTS="${ALERTS:-100}"
NAME_KIB="${NAME_KIB:-500}"
STORM="${STORM:-20000}"
WORST="${WORST:-12000}"
CASES="${CASES:-huge many worst}"
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

# The load generator: one keep-alive connection; prints "enqueue=N rate_limited=M ..." and
# exits 1 on any answer that is not 200.
cat > "$TMP/send.py" <<'PY'
import collections, http.client, json, sys, urllib.parse
url, case, count, kib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
u = urllib.parse.urlparse(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
headers = {"Authorization": "Bearer bench-token-0123456789abcdef",
           "Content-Type": "application/json"}
def alert(name, fp):
    return {"status": "firing", "labels": {"alertname": name, "severity": "warning"},
            "annotations": {"summary": "bench"}, "startsAt": "2026-11-22T06:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "fingerprint": fp}
def payload(alerts):
    return {"version": "4", "status": "firing", "receiver": "steward", "groupKey": "{}:{}",
            "truncatedAlerts": 0, "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://am", "alerts": alerts}
if case == "huge":
    # Distinct names that differ only in their first bytes: each is a new subject.
    batches = [[alert("%06d" % i + "A" * (kib * 1024 - 6), "huge-%d" % i)] for i in range(count)]
elif case == "many":
    names = ["%06d" % i + "B" * 294 for i in range(count)]
    batches = [[alert(names[j], "many-%d" % j) for j in range(i, min(i + 100, count))]
               for i in range(0, count, 100)]
else:
    # Every window full: subjects and fingerprints as long as a key is kept verbatim (64
    # bytes), each subject firing 5 times in a row (a new failure each: flapping, escalated).
    every = [alert("%06d" % i + "C" * 58, "w-%06d-%d-" % (i, r) + "F" * 52)
             for i in range(count) for r in range(5)]
    batches = [every[i:i + 100] for i in range(0, len(every), 100)]
decisions = collections.Counter()
for b in batches:
    body = json.dumps(payload(b)).encode()
    conn.request("POST", "/hooks/alertmanager", body, headers)
    r = conn.getresponse()
    text = r.read()
    if r.status != 200:
        print("answer %d: %s" % (r.status, text[:300]), file=sys.stderr)
        sys.exit(1)
    for d in json.loads(text)["decisions"]:
        decisions[d["decision"]] += 1
print(" ".join("%s=%d" % kv for kv in sorted(decisions.items())))
PY

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
start() { # $1: state dir
  cat > "$TMP/steward.toml" <<TOML
workspace = "$TMP/workspace"
state_dir = "$1"
[serve]
paused = true
TOML
  mkdir -p "$TMP/workspace"
  : > "$TMP/out"
  HOME="$TMP" RUST_LOG=error "$BIN" --config "$TMP/steward.toml" serve --listen 127.0.0.1:0 \
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
  sleep 1 # start-up work settles
}
stop() { kill -TERM "$PID"; wait "$PID" || true; PID=""; }
size() { if [ -e "$1" ]; then stat -c %s "$1"; else echo 0; fi; }
largest_job() { find "$1/queue" -name '*.json' -printf '%s\n' 2>/dev/null | sort -n | tail -1; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
human() { awk -v b="$1" 'BEGIN { if (b >= 1048576) printf "%.1f MiB", b / 1048576;
  else if (b >= 1024) printf "%.1f KiB", b / 1024; else printf "%d B", b }'; }

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; binary $BIN"
echo
echo "| case | alerts | decisions | router.json | largest job file | event log | RSS idle | RSS after | RSS after restart |"
echo "|---|---|---|---|---|---|---|---|---|"
FAIL=0
for CASE in $CASES; do
  STATE="$TMP/state-$CASE"
  start "$STATE"
  IDLE="$(rss)"
  case "$CASE" in
    huge) N="$ALERTS"; DESC="$ALERTS × ${NAME_KIB} KiB alertname" ;;
    many) N="$STORM"; DESC="$STORM × 300 B alertname" ;;
    *) N="$WORST"; DESC="$WORST subjects of 64 B × 5 firings" ;;
  esac
  DECISIONS="$(python3 "$TMP/send.py" "$URL" "$CASE" "$N" "$NAME_KIB")"
  sleep 2.5 # the flusher writes router.json at most once a second
  AFTER="$(rss)"
  stop
  ROUTER="$(size "$STATE/router.json")"
  JOB="$(largest_job "$STATE")"
  EVENTS="$(du -sb "$STATE/events" | cut -f1)"
  start "$STATE"
  RESTART="$(rss)"
  stop
  printf '| %s | %s | %s | %s | %s | %s | %.1f MiB | %.1f MiB | %.1f MiB |\n' "$CASE" "$DESC" \
    "$DECISIONS" "$(human "$ROUTER")" "$(human "${JOB:-0}")" "$(human "$EVENTS")" \
    "$(mib "$IDLE")" "$(mib "$AFTER")" "$(mib "$RESTART")"
  if [ "$CASE" = huge ]; then LIMIT=65536; else LIMIT=$(( 8 * 1048576 )); fi
  [ "$ROUTER" -le "$LIMIT" ] || { echo "FAIL $CASE: router.json $ROUTER B > $LIMIT B"; FAIL=1; }
  [ "${JOB:-0}" -le 262144 ] || { echo "FAIL $CASE: a job file of $JOB B > 256 KiB"; FAIL=1; }
  [ "$RESTART" -le $(( 24 * 1024 )) ] || { echo "FAIL $CASE: RSS after restart ${RESTART} KiB > 24 MiB"; FAIL=1; }
done
if [ -n "${NO_LIMITS:-}" ]; then exit 0; fi
exit "$FAIL"
