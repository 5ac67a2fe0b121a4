#!/usr/bin/env python3
"""Crash capture latency: `steward serve`'s Docker watch against a real engine's Docker API. N
containers crash one after another, each printing a numbered last line; for each, the latency
from the engine's `die` event (the incident's `died`) to the first capture written (`captured`),
and whether the last line is in the capture. Prints a table of median, p90 and max per engine
(target: median <= 100 ms, last line captured every time).

Engines (ENGINES, default "docker podman"):
  docker  Debian's dockerd (docker.io), private data root, vfs, no bridge or iptables: Docker's
          event stream, as a Docker host has it;
  podman  Debian's podman serving the Docker API (the recipe of tests/it/common/podman.rs), with
          `events_logger = "file"`: podman tails its event file polling every 250 ms
          (libpod/events/logfile.go, `Poll: true`), so its events reach any client up to 250 ms
          after the fact; that floor is the engine's.

Needs root, /bin/busybox (busybox-static), runc, docker.io and/or podman, and a release build
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


def docker_engine(tmp):
    """dockerd on a private socket and data root; the image imported from busybox."""
    d = tmp / "docker"
    (d / "img/bin").mkdir(parents=True)
    sock = d / "docker.sock"
    service = subprocess.Popen(
        ["dockerd", "--data-root", str(d / "root"), "--exec-root", str(d / "exec"), "--pidfile",
         str(d / "pid"), "-H", f"unix://{sock}", "--iptables=false", "--ip6tables=false",
         "--bridge=none", "--storage-driver=vfs", "--exec-opt", "native.cgroupdriver=cgroupfs"],
        stdout=subprocess.DEVNULL, stderr=open(d / "dockerd.log", "w"), start_new_session=True)
    cli = ["docker", "-H", f"unix://{sock}"]
    for _ in range(300):
        if subprocess.run(cli + ["version"], capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    shutil.copy("/bin/busybox", d / "img/bin/busybox")
    for applet in ["sh", "echo", "sleep"]:
        os.symlink("busybox", d / "img/bin" / applet)
    subprocess.run(["tar", "-C", str(d / "img"), "-cf", str(d / "img.tar"), "."], check=True)
    subprocess.run(cli + ["import", str(d / "img.tar"), IMAGE], check=True, stdout=subprocess.DEVNULL)
    return cli, dict(os.environ), sock, service


def parse_time(s):
    # RFC 3339 with nanoseconds: Python keeps microseconds.
    head, _, frac = s.rstrip("Z").partition(".")
    t = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() + float("0." + (frac or "0")[:9])


def measure(tmp, cli, env, sock):
    """The incidents of N crashes, captured by a `steward serve` watching `sock`."""
    state = tmp / "state"
    cfg = tmp / "steward.toml"
    cfg.write_text(f'workspace = "{tmp}"\nstate_dir = "{state}"\n[serve]\npaused = true\n'
                   f'scheduler = false\n[docker]\nhost = "unix://{sock}"\nrecapture_secs = 1\n'
                   f'acute_deaths = 1000\nchronic_deaths = 1000\n')
    serve = subprocess.Popen([STEWARD, "--config", str(cfg), "serve", "--listen", "127.0.0.1:0"],
                             stdout=subprocess.PIPE, stderr=open(tmp / "serve.log", "w"), text=True)
    serve.stdout.readline()
    incidents = []
    try:
        for i in range(N):
            subprocess.run(cli + ["run", "-d", "--network", "none", "--name", f"c{i}", IMAGE, "sh",
                                  "-c", f"echo noise; echo 'last line {i}' >&2; exit 3"],
                           env=env, check=True, capture_output=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            files = list((state / "incidents").glob("*.json")) if (state / "incidents").exists() else []
            incidents = [json.loads(f.read_text()) for f in files]
            if len(incidents) >= N:
                break
            time.sleep(0.5)
    finally:
        serve.terminate()
        serve.wait()
    if len(incidents) < N:
        sys.exit(f"only {len(incidents)} of {N} crashes were captured; steward serve said:\n"
                 + (tmp / "serve.log").read_text()[-3000:])
    return incidents


def row(engine, incidents):
    from_event = sorted((parse_time(i["captured"]) - parse_time(i["died"])) * 1000 for i in incidents)
    from_receipt = sorted(i["capture_ms"] for i in incidents)
    last = sum(1 for i in incidents if f"last line {i['container'][1:]}" in i["logs_at_death"])
    p90 = lambda xs: xs[int(len(xs) * 0.9) - 1]  # noqa: E731
    stats = lambda xs: f"{statistics.median(xs):>8.1f} {p90(xs):>8.1f} {max(xs):>8.1f}"  # noqa: E731
    return [f"{engine:<22} {'die event -> capture written':<30} {stats(from_event)}  {last}/{N}",
            f"{'':<22} {'event received -> written':<30} {stats(from_receipt)}",
            statistics.median(from_event) <= 100 and last == N]


def version(argv, word=-1):
    words = subprocess.run(argv, capture_output=True, text=True).stdout.split()
    return words[word] if len(words) > max(word, -word - 1) else "?"


def main():
    if os.geteuid() != 0:
        sys.exit("needs root")
    engines = os.environ.get("ENGINES", "docker podman").split()
    need = {"docker": "dockerd", "podman": "podman"}
    for e in engines:
        if not shutil.which(need.get(e, e)):
            sys.exit(f"ENGINES names {e}: needs {need.get(e, e)} (apt-get install docker.io podman runc busybox-static)")
    lines, met = [], {}
    for e in engines:
        # Short: podman's conmon fails on long socket paths under its run root.
        tmp = Path(tempfile.mkdtemp(prefix=f"sw-crash-{e}-"))
        if e == "docker":
            cli, env, sock, service = docker_engine(tmp)
            label = f"dockerd {version(['dockerd', '--version'], 2).rstrip(',')}"
        else:
            cli, env, sock, service = engine(tmp)
            label = f"podman {version(['podman', '--version'])}"
        try:
            incidents = measure(tmp, cli, env, sock)
        finally:
            subprocess.run(cli + ["rm", "--force"] + [f"c{i}" for i in range(N)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.killpg(service.pid, 15)
            service.wait()
        first, second, met[label] = row(label, incidents)
        lines += [first, second]
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"crash capture, {N} crashes per engine")
    print(f"{'engine':<22} {'measure (ms)':<30} {'median':>8} {'p90':>8} {'max':>8}  last line")
    print("\n".join(lines))
    for label, ok in met.items():
        print(f"{label}: {'met' if ok else 'NOT met'} (median <= 100 ms, last line every time)")


if __name__ == "__main__":
    main()
