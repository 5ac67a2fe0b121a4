#!/usr/bin/env python3
"""Crash capture latency: `steward serve`'s Docker watch against podman's Docker API (the recipe of
tests/it/common/podman.rs). N containers crash one after another, each printing a numbered last
line; for each, the latency from the engine's `die` event (the incident's `died`) to the first
capture written (`captured`), and whether the last line is in the capture. Prints a table of
median, p90 and max (target: median <= 100 ms, last line captured every time).

Needs podman, runc and /bin/busybox (Debian podman runc busybox-static), root, and a release build
(STEWARD_BIN overrides target/release/steward)."""
import datetime, json, os, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEWARD = os.environ.get("STEWARD_BIN", str(ROOT / "target/release/steward"))
N = int(os.environ.get("N", "50"))
IMAGE = "localhost/busybox:bench"


def engine(tmp):
    d = tmp / "podman"
    (d / "img/bin").mkdir(parents=True)
    (d / "containers.conf").write_text(
        f'[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\n'
        f'events_logger = "file"\nevents_logfile_path = "{d}/events.log"\nruntime = "runc"\n'
        f'tmp_dir = "{d}/tmp"\nvolume_path = "{d}/volumes"\n[network]\nnetwork_config_dir = "{d}/net"\n')
    (d / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{d}/graph"\nrunroot = "{d}/run"\n')
    env = dict(os.environ, CONTAINERS_CONF=str(d / "containers.conf"),
               CONTAINERS_STORAGE_CONF=str(d / "storage.conf"))
    shutil.copy("/bin/busybox", d / "img/bin/busybox")
    for applet in ["sh", "echo", "sleep"]:
        os.symlink("busybox", d / "img/bin" / applet)
    subprocess.run(["tar", "-C", str(d / "img"), "-cf", str(d / "img.tar"), "."], check=True)
    podman = ["podman", "--runtime", "runc"]
    subprocess.run(podman + ["import", "--quiet", str(d / "img.tar"), IMAGE], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    sock = d / "podman.sock"
    service = subprocess.Popen(podman + ["system", "service", "--time=0", f"unix://{sock}"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    for _ in range(200):
        if sock.exists():
            break
        time.sleep(0.1)
    return podman, env, sock, service


def parse_time(s):
    # RFC 3339 with nanoseconds: Python keeps microseconds.
    head, _, frac = s.rstrip("Z").partition(".")
    t = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() + float("0." + (frac or "0")[:9])


def main():
    if os.geteuid() != 0 or not shutil.which("podman"):
        sys.exit("needs root and podman (apt-get install podman runc busybox-static)")
    tmp = Path(tempfile.mkdtemp(prefix="steward-bench-crash-"))
    podman, env, sock, service = engine(tmp)
    state = tmp / "state"
    cfg = tmp / "steward.toml"
    cfg.write_text(f'workspace = "{tmp}"\nstate_dir = "{state}"\n[serve]\npaused = true\n'
                   f'scheduler = false\n[docker]\nhost = "unix://{sock}"\nrecapture_secs = 1\n'
                   f'acute_deaths = 1000\nchronic_deaths = 1000\n')
    serve = subprocess.Popen([STEWARD, "--config", str(cfg), "serve", "--listen", "127.0.0.1:0"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    serve.stdout.readline()
    try:
        for i in range(N):
            subprocess.run(podman + ["run", "-d", "--network", "none", "--name", f"c{i}", IMAGE, "sh",
                                     "-c", f"echo noise; echo 'last line {i}' >&2; exit 3"],
                           env=env, check=True, stdout=subprocess.DEVNULL)
        deadline = time.time() + 120
        incidents = []
        while time.time() < deadline:
            files = list((state / "incidents").glob("*.json")) if (state / "incidents").exists() else []
            incidents = [json.loads(f.read_text()) for f in files]
            if len(incidents) >= N:
                break
            time.sleep(0.5)
    finally:
        serve.terminate()
        serve.wait()
        subprocess.run(podman + ["rm", "--all", "--force", "--time", "0"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.killpg(service.pid, 15)
    if len(incidents) < N:
        sys.exit(f"only {len(incidents)} of {N} crashes were captured")
    from_event = sorted((parse_time(i["captured"]) - parse_time(i["died"])) * 1000 for i in incidents)
    from_receipt = sorted(i["capture_ms"] for i in incidents)
    last = sum(1 for i in incidents
               if f"last line {i['container'][1:]}" in i["logs_at_death"])
    p90 = lambda xs: xs[int(len(xs) * 0.9) - 1]
    print(f"crash capture, {N} crashes (podman {subprocess.run(['podman', '--version'], capture_output=True, text=True).stdout.split()[-1]})")
    print(f"{'measure':<44} {'median':>8} {'p90':>8} {'max':>8}")
    print(f"{'die event -> first capture written (ms)':<44} {statistics.median(from_event):>8.1f} "
          f"{p90(from_event):>8.1f} {max(from_event):>8.1f}")
    print(f"{'event received -> capture written (ms)':<44} {statistics.median(from_receipt):>8.1f} "
          f"{p90(from_receipt):>8.1f} {max(from_receipt):>8.1f}")
    print(f"last line before death in the capture: {last}/{N}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
