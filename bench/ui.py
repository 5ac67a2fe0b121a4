#!/usr/bin/env python3
"""The web page's cost against the number of recorded runs: `steward serve` with a UI token over
a state directory of fabricated runs (N=100 and N=10,000: run.json, signal.json, result.json,
checks, audit and transcript of realistic sizes, over the last 60 days, six goals, mixed
outcomes). Per N, one daemon: log in, save `GET /` and `GET /runs/ID` as files, then request the
runs page, its static copy, the run's page and its static copy in turn, REQUESTS times each, on
one keep-alive connection. The static copies are served by the same process behind the same
session check and headers (`STEWARD_BENCH_STATIC_DIR`, see src/daemon/server/ui/bench.rs), so the
difference is only the page's own work. Server time is the `Server-Timing` the daemon reports for
each answer; client time is the request's round trip. Prints medians and the ratio page/static
(target <= 2.0, and the same at both N)."""
import http.client, json, os, random, statistics, subprocess, sys, tempfile, time
from pathlib import Path
from datetime import datetime, timedelta, timezone

ROOT = Path(__file__).resolve().parent.parent
STEWARD = os.environ.get("STEWARD_BIN", str(ROOT / "target/release/steward"))
REQUESTS = int(os.environ.get("REQUESTS", "400"))
COUNTS = [int(n) for n in os.environ.get("COUNTS", "100,10000").split(",")]
TOKEN = "bench-ui-token-0123456789abcdef0123456789"
GOALS = ["disk-space", "health-check", "cert-expiry", "backup-verify", "nginx-5xx", "journal-errors"]
OUTCOMES = ["ok"] * 10 + ["no_action"] * 6 + ["fixed"] * 2 + ["failed", "escalated", "aborted"]
SOURCES = ["timer"] * 5 + ["alertmanager"] * 3 + ["systemd", "manual"]

def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

def fabricate(runs_dir, n, started, rng):
    goal, outcome, source = rng.choice(GOALS), rng.choice(OUTCOMES), rng.choice(SOURCES)
    rid = f"{started.strftime('%Y%m%dT%H%M%SZ')}-{goal}-{n:06x}"
    d = runs_dir / rid
    d.mkdir(parents=True)
    finished = started + timedelta(seconds=rng.uniform(5, 120))
    subject = f"{goal}@host{n % 7}"
    (d / "run.json").write_text(json.dumps({"id": rid, "goal": goal, "stage": "done", "started": iso(started),
        "pid": 4242, "vars": {"unit": "nginx.service"}, "agent": None}, indent=2))
    (d / "signal.json").write_text(json.dumps({"source": source, "subject": subject, "fingerprint": f"{n:016x}",
        "severity": "warning", "labels": {"alertname": goal, "instance": f"host{n % 7}:9100", "job": "node"},
        "annotations": {"summary": f"{goal} on host{n % 7}", "description": "x" * 300},
        "payload": {"status": "firing", "startsAt": iso(started)}, "received": iso(started)}, indent=2))
    calls = []
    transcript, audit = [], []
    for i in range(8):
        tid = f"toolu_{n:06x}_{i}"
        cmd = f"systemctl status nginx.service --no-pager -n {i}"
        calls.append(cmd)
        transcript.append({"type": "assistant", "message": {"content": [{"type": "tool_use", "id": tid, "name": "Bash", "input": {"command": cmd}}]}})
        transcript.append({"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": tid, "content": "● nginx.service - A high performance web server\n" + "   log line\n" * 20, "is_error": False}]}})
        audit.append({"time": iso(started), "session_id": "s", "tool_use_id": tid, "tool": "Bash", "input": {"command": cmd}, "decision": "allow", "rule": "read-only", "reason": "read-only command"})
    transcript.append({"type": "result", "subtype": "success", "is_error": False, "total_cost_usd": 0.0123, "num_turns": 9})
    (d / "transcript.jsonl").write_text("".join(json.dumps(l) + "\n" for l in transcript))
    (d / "audit.jsonl").write_text("".join(json.dumps(l) + "\n" for l in audit))
    checks = [{"name": f"check-{i}", "description": "nginx answers on :80", "kind": "command",
               "status": "pass", "observed": {"exit": 0}, "expected": "exit 0", "detail": None,
               "duration_ms": 12} for i in range(2)]
    (d / "checks-before.json").write_text(json.dumps({"static_": [], "preflight": checks,
        "invariants": checks, "post": []}, indent=2))
    (d / "checks-after.json").write_text(json.dumps({"invariants": checks, "post": checks}, indent=2))
    cost = round(rng.uniform(0.0, 0.08), 4) if outcome != "no_action" else 0.0
    (d / "result.json").write_text(json.dumps({
        "id": rid, "goal": goal, "source": source, "subject": subject, "outcome": outcome, "exit": "ok",
        "exit_code": 0, "reason": f"the agent reported {outcome}; checks after: 4 passed",
        "started": iso(started), "finished": iso(finished),
        "duration_ms": int((finished - started).total_seconds() * 1000), "agent_started": True,
        "cost_usd": cost, "cost_source": "reported", "num_turns": 9, "permission_denials": [],
        "policy_denials": 0, "actions_filed": [], "hook_errors": 0, "failure": None,
        "verdict": {"status": "ok", "summary": "looked at nginx; " + "all fine. " * 20, "findings": ["f1", "f2"],
                    "actions_taken": [], "proposed_actions": [], "knowledge": []},
        "failed_checks": [], "regressions": [], "state_changes": [], "rollback": None,
        "session_id": "0b7c4f0e-0000-4000-8000-000000000000", "claude_exit_code": 0}, indent=2))
    return rid

class Client:
    def __init__(self, url):
        self.host, self.port = url.removeprefix("http://").split(":")
        self.origin = url
        self.conn = http.client.HTTPConnection(self.host, int(self.port))
        self.cookie = ""

    def request(self, method, path, body=None, headers=None):
        h = {"Cookie": self.cookie} if self.cookie else {}
        h.update(headers or {})
        t = time.perf_counter()
        self.conn.request(method, path, body=body, headers=h)
        res = self.conn.getresponse()
        data = res.read()
        took = time.perf_counter() - t
        timing = res.getheader("server-timing") or ""
        server = float(timing.split("dur=")[1]) if "dur=" in timing else float("nan")
        return res, data, took * 1000, server

    def login(self):
        res, _, _, _ = self.request("POST", "/login", body=f"token={TOKEN}",
            headers={"Origin": self.origin, "Content-Type": "application/x-www-form-urlencoded"})
        if res.status != 303:
            sys.exit(f"login failed: {res.status}")
        self.cookie = res.getheader("set-cookie").split(";")[0]

def measure(n):
    rng = random.Random(n)
    tmp = Path(tempfile.mkdtemp(prefix="steward-bench-ui-"))
    state, static = tmp / "state", tmp / "static"
    runs = state / "runs"
    runs.mkdir(parents=True); static.mkdir(); (tmp / "ws").mkdir()
    now = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    ids = [fabricate(runs, i, now - timedelta(days=60) + timedelta(seconds=i * 60 * 86400 // n), rng) for i in range(n)]
    made = time.perf_counter() - t0
    (tmp / "ui-token").write_text(TOKEN + "\n")
    cfg = tmp / "steward.toml"
    cfg.write_text(f'workspace = "{tmp}/ws"\nstate_dir = "{state}"\n[serve]\npaused = true\nscheduler = false\n'
                   f'ui_token_file = "{tmp}/ui-token"\n')
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "STEWARD_BENCH_STATIC_DIR": str(static)}
    d = subprocess.Popen([STEWARD, "--config", str(cfg), "serve", "--listen", "127.0.0.1:0"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = d.stdout.readline().strip().split()[-1]
        c = Client(url)
        c.login()
        t0 = time.perf_counter()
        res, runs_page, _, _ = c.request("GET", "/")
        first = time.perf_counter() - t0
        run_id = ids[len(ids) // 2]
        res2, run_page, _, _ = c.request("GET", f"/runs/{run_id}")
        if res.status != 200 or res2.status != 200 or run_id.encode() not in run_page:
            sys.exit(f"pages failed: {res.status} {res2.status}: {run_page[-600:]!r}")
        (static / "runs.html").write_bytes(runs_page)
        (static / "run.html").write_bytes(run_page)
        cases = [("GET /", "/"), ("static, same size", "/bench/static/runs.html"),
                 (f"GET /runs/ID", f"/runs/{run_id}"), ("static, same size ", "/bench/static/run.html")]
        for _, path in cases * 30:
            c.request("GET", path)
        server = {name: [] for name, _ in cases}
        client = {name: [] for name, _ in cases}
        size = {}
        for _ in range(REQUESTS):
            for name, path in cases:
                res, body, took, srv = c.request("GET", path)
                assert res.status == 200, (path, res.status)
                server[name].append(srv); client[name].append(took); size[name] = len(body)
        rss = int(next(l.split()[1] for l in open(f"/proc/{d.pid}/status") if l.startswith("VmRSS")))
        return {"n": n, "made": made, "first": first, "cases": cases, "server": server, "client": client,
                "size": size, "rss": rss}
    finally:
        d.terminate(); d.wait()

def main():
    if not os.access(STEWARD, os.X_OK):
        sys.exit(f"no executable at {STEWARD}: build steward or set STEWARD_BIN")
    print(f"load: {' '.join(open('/proc/loadavg').read().split()[:3])} on {os.cpu_count()} cores; "
          f"{STEWARD}; {REQUESTS} requests per page, interleaved")
    print(f"{'runs':>6} {'page':<19} {'bytes':>7} {'server ms':>10} {'ratio':>6} {'client ms':>10} {'ratio':>6}")
    ok = True
    for n in COUNTS:
        r = measure(n)
        names = [name for name, _ in r["cases"]]
        for page, static in ((names[0], names[1]), (names[2], names[3])):
            sp, ss = statistics.median(r["server"][page]), statistics.median(r["server"][static])
            cp, cs = statistics.median(r["client"][page]), statistics.median(r["client"][static])
            print(f"{n:>6} {page:<19} {r['size'][page]:>7} {sp:>10.3f} {sp / ss:>6.2f} {cp:>10.3f} {cp / cs:>6.2f}")
            print(f"{'':>6} {static.strip():<19} {r['size'][static]:>7} {ss:>10.3f} {'':>6} {cs:>10.3f}")
            ok &= sp / ss <= 2.0
        print(f"{'':>6} (fabricated in {r['made']:.1f} s; first GET / {r['first'] * 1000:.0f} ms; "
              f"VmRSS {r['rss'] / 1024:.1f} MiB)")
    sys.exit(0 if ok else 1)

if __name__ == "__main__":
    main()
