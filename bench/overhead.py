#!/usr/bin/env python3
"""Overhead per run: `steward run` against the scripted model vs the same claude command, with the
same prompt, argv and environment, called directly. Both are measured alternately in one process,
so machine noise hits both sides alike. Prints a table of medians and the ratio (target <= 1.10)."""
import json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEWARD = os.environ.get("STEWARD_BIN", str(ROOT / "target/release/steward"))
CACHE = os.environ.get("STEWARD_TEST_CACHE", os.path.expanduser("~/.cache/steward-test"))
CLAUDE = os.environ.get("STEWARD_TEST_CLAUDE", f"{CACHE}/claude-2.1.197/node_modules/.bin/claude")
N = int(os.environ.get("N", "10"))

def main():
    tmp = Path(tempfile.mkdtemp(prefix="steward-bench-"))
    ws, state = tmp / "ws", tmp / "state"
    ws.mkdir()
    model = subprocess.Popen(
        [STEWARD, "dev", "scripted-model", "--scenario", str(ROOT / "bench/scenarios/verdict-ok.toml"),
         "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    line = model.stdout.readline().strip()
    url = line.split()[-1]
    cfg = tmp / "steward.toml"
    cfg.write_text(f'workspace = "{ws}"\nstate_dir = "{state}"\ngoals_dir = "{ROOT}/bench/goals"\n'
                   f'no_bundled = true\n[claude]\nbin = "{CLAUDE}"\nmax_retries = 0\nbase_url = "{url}"\n')
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "ANTHROPIC_API_KEY": "sk-bench"}
    steward_cmd = [STEWARD, "--config", str(cfg), "--json", "run", "bench"]

    # One recorded run gives the exact argv and prompt that steward used.
    out = subprocess.run(steward_cmd, env=env, capture_output=True, text=True)
    report = json.loads(out.stdout)
    if report.get("outcome") != "ok":
        sys.exit(f"steward run did not succeed: {out.stdout}\n{out.stderr}")
    run_dir = state / "runs" / report["id"]
    argv = json.loads((run_dir / "claude-argv.json").read_text())
    prompt = (run_dir / "prompt.md").read_text()

    def direct():
        home = tempfile.mkdtemp(dir=tmp)
        denv = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
                "ANTHROPIC_API_KEY": "sk-bench", "ANTHROPIC_BASE_URL": url,
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
                "CLAUDE_CODE_DISABLE_GIT_INSTRUCTIONS": "1", "CLAUDE_CODE_MAX_RETRIES": "0"}
        r = subprocess.run(argv, input=prompt, env=denv, cwd=ws, capture_output=True, text=True)
        if '"is_error":false' not in r.stdout:
            sys.exit(f"direct claude failed: {r.stdout[-2000:]}\n{r.stderr[-2000:]}")

    def via_steward():
        r = subprocess.run(steward_cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"steward failed ({r.returncode}): {r.stdout}\n{r.stderr}")

    times = {"claude direct": [], "steward run": []}
    for _ in range(N):
        for name, fn in (("claude direct", direct), ("steward run", via_steward)):
            t = time.perf_counter(); fn(); times[name].append(time.perf_counter() - t)
    model.terminate()
    base = statistics.median(times["claude direct"])
    print(f"{'case':<16} {'median s':>9} {'min s':>7} {'max s':>7} {'ratio':>6}   (N={N})")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"{name:<16} {m:9.3f} {min(ts):7.3f} {max(ts):7.3f} {m / base:6.2f}")
    ratio = statistics.median(times["steward run"]) / base
    print(f"overhead ratio {ratio:.3f} (target <= 1.10): {'PASS' if ratio <= 1.10 else 'FAIL'}")

if __name__ == "__main__":
    main()
