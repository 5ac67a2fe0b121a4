#!/usr/bin/env python3
"""Prompt size: a fixture host with 40 probes and 3 real anomalies, seen by real `steward run
health-check` runs (real claude, steward's scripted model), against the naive concatenation of
every probe's output (what the seed's gather-context.sh put in front of the model).

The anomalies are real to the host snapshot, not only to the probes:
  1. a failed unit: a stand-in `systemctl` on the run's PATH (the snapshot's unit collector and
     the probes both call it) lists `backup-nightly.service` as failed;
  2. a container that exited 137: podman's Docker API (the recipe of bench/crash_capture.py),
     the container `worker` killed by SIGKILL, next to five running ones;
  3. a disk over threshold: an ext4 image on a loop device, mounted in a private mount namespace
     (this script re-executes itself under `unshare -m`) and filled to about 93 %.
The other probes print realistic output from fixture files (systemctl, journalctl, docker,
nomad, consul, nix, ss, ip, ...).

Each round starts from an empty state directory: run 1 is the subject's first run, run 2 the
same host unchanged. The prompt is the run's saved `prompt.md` (exactly what claude got); the
naive size is every probe's output from the run's `context.json`, each under a `== name ==`
header. Targets: run 1 <= 30 % of the naive bytes with all three anomalies in the prompt; run 2
<= 10 %. Prints a table per round and the medians; exit 1 when a target is missed.

Needs root, podman, runc, /bin/busybox, losetup, mkfs.ext4, unshare, a release build
(STEWARD_BIN overrides target/release/steward) and the claude CLI (STEWARD_TEST_CLAUDE, else the
test cache). ROUNDS (3) sets the repetitions; SAVE_PROMPTS=DIR keeps each run's prompt there."""
import json, os, shutil, socket, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from crash_capture import IMAGE, engine  # noqa: E402  (the podman recipe, shared)

STEWARD = os.environ.get("STEWARD_BIN", str(ROOT / "target/release/steward"))
CLAUDE = os.environ.get(
    "STEWARD_TEST_CLAUDE", "/root/.cache/steward-test/claude-2.1.332/node_modules/.bin/claude")
ROUNDS = int(os.environ.get("ROUNDS", "3"))
QUIET = ('[[turn]]\nverdict = { status = "ok", summary = "fine", findings = [], actions_taken = [],'
         ' proposed_actions = [], knowledge = [] }\n')
STAND_IN_CHECKS = "".join(
    f'[[check]]\nname = "{n}"\ndescription = "stand-in"\nkind = "file"\npath = "/"\n\n'
    for n in ["systemd-no-failed-units", "root-disk-space", "consul-members-alive",
              "nomad-jobs-healthy", "nix-flake-check", "proc-mounted"])


def lines(n, fmt):
    return "".join(fmt(i) + "\n" for i in range(n))


SERVICES = ["nginx", "postgresql", "redis", "sshd", "consul", "nomad", "docker", "chronyd",
            "systemd-journald", "systemd-logind", "systemd-networkd", "systemd-resolved",
            "node-exporter", "promtail", "grafana", "prometheus", "alertmanager", "vault",
            "restic-rest", "tailscaled", "fail2ban", "cron", "dbus", "polkit", "smartd"]


def fixtures():
    """name -> (command it stands for, output)."""
    ts = lambda i: f"2026-11-30T23:{i % 60:02d}:{(i * 7) % 60:02d}+0000"  # noqa: E731
    f = {}
    # A NixOS host with a container stack runs 80-odd services.
    f["units-running"] = ("systemctl list-units --type=service --state=running", lines(
        80, lambda i: f"{SERVICES[i % len(SERVICES)]}{'' if i < len(SERVICES) else f'-{i}'}.service "
                      f"loaded active running {SERVICES[i % len(SERVICES)].capitalize()} service daemon, instance {i}"))
    f["timers"] = ("systemctl list-timers --all", "NEXT LEFT LAST PASSED UNIT ACTIVATES\n" + lines(
        14, lambda i: f"Tue 2026-12-01 0{i % 10}:00:00 UTC {i + 1}h left Mon 2026-11-30 0{i % 10}:00:00 UTC "
                      f"{23 - i}h ago unit-{i}.timer unit-{i}.service"))
    f["journal-errors"] = ("journalctl -p err --since -1h -n 50", lines(
        50, lambda i: f"{ts(i)} host01 backup-nightly[{4100 + i}]: Fatal: unable to open repository at "
                      f"rest:http://10.0.0.5:8000/: connection refused" if i % 5 == 0 else
        f"{ts(i)} host01 kernel: nvme0n1: I/O timeout, retrying request {i}"))
    f["journal-backup"] = ("journalctl -u backup-nightly.service -n 40", lines(
        40, lambda i: f"{ts(i)} host01 restic[{4100 + i}]: scanning /srv/data/photos/{2000 + i} "
                      f"({i * 1311} files, {i * 3.2:.1f} GiB)"))
    for svc in ["nginx", "sshd", "postgresql", "consul", "nomad"]:
        f[f"journal-{svc}"] = (f"journalctl -u {svc}.service -n 50 -o short-iso", lines(
            50, lambda i, svc=svc: f"{ts(i)} host01 {svc}[{900 + i}]: connection {i} from 10.0.0.{i % 250} "
                                   f"port {40000 + i * 17}: request handled in {i * 3 % 97} ms, status=200, "
                                   f"bytes={i * 1024 % 65536}"))
    f["journal-kernel"] = ("journalctl -k -n 40", lines(
        40, lambda i: f"{ts(i)} host01 kernel: [{1000 + i * 13}.{i:06d}] eth0: link up, 1000Mbps, "
                      f"full-duplex, lpa 0x{i * 37:04X}"))
    f["uptime"] = ("uptime", " 23:59:01 up 41 days,  3:12,  2 users,  load average: 0.42, 0.51, 0.48\n")
    f["free"] = ("free -m", "               total        used        free      shared  buff/cache   available\n"
                            "Mem:           31906       11873        2201         412       17831       19180\n"
                            "Swap:           8191         112        8079\n")
    f["ss-listening"] = ("ss -ltnp", "State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n" + lines(
        22, lambda i: f"LISTEN 0 4096 0.0.0.0:{[22, 80, 443, 5432, 6379, 8500, 4646, 4647, 9100, 9090, 3000][i % 11] + (i // 11) * 10000} "
                      f"0.0.0.0:* users:((\"{SERVICES[i % len(SERVICES)]}\",pid={1000 + i},fd={3 + i}))"))
    f["ip-addr"] = ("ip addr", lines(
        6, lambda i: f"{i + 1}: eth{i}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP\n"
                     f"    link/ether 52:54:00:12:34:{i:02x} brd ff:ff:ff:ff:ff:ff\n"
                     f"    inet 10.0.{i}.10/24 brd 10.0.{i}.255 scope global eth{i}\n"
                     f"       valid_lft forever preferred_lft forever"))
    f["ip-route"] = ("ip route", lines(8, lambda i: f"10.0.{i}.0/24 dev eth{i % 6} proto kernel scope link src 10.0.{i}.10"))
    f["docker-stats"] = ("docker stats --no-stream", "CONTAINER ID NAME CPU % MEM USAGE / LIMIT MEM % NET I/O BLOCK I/O PIDS\n" + lines(
        6, lambda i: f"{i:012x} {['web', 'api', 'cache', 'queue', 'metrics', 'worker'][i]} {i * 1.3:.2f}% "
                     f"{40 + i * 17}MiB / 31.16GiB 0.{i}% 1.2MB / 800kB 0B / 0B {4 + i}"))
    f["docker-images"] = ("docker images", "REPOSITORY TAG IMAGE ID CREATED SIZE\n" + lines(
        12, lambda i: f"registry.local/app{i} v1.{i}.0 {i * 0x1f2e3d:012x} {i + 2} weeks ago {80 + i * 9}MB"))
    f["docker-inspect-web"] = ("docker inspect web", json.dumps([{
        "Id": "9f" * 32, "Name": "/web", "State": {"Status": "running", "Running": True, "Pid": 4242,
                                                   "ExitCode": 0, "StartedAt": "2026-11-20T10:00:00Z"},
        "Config": {"Image": "registry.local/web:v1.4.2", "Env": [f"APP_SETTING_{i}=value-{i}" for i in range(40)],
                   "Labels": {f"org.opencontainers.image.label{i}": f"label value {i}" for i in range(30)}},
        "Mounts": [{"Type": "bind", "Source": f"/srv/data/web/{i}", "Destination": f"/data/{i}",
                    "RW": True} for i in range(6)],
        "NetworkSettings": {"Ports": {f"{8000 + i}/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(8000 + i)}]
                                      for i in range(4)}}}], indent=2) + "\n")
    f["docker-logs-api"] = ("docker logs --tail 40 api", lines(
        40, lambda i: f"{ts(i)} INFO api: GET /v1/items/{i} 200 {i * 7 % 90}ms user={1000 + i}"))
    f["nomad-status"] = ("nomad status", "ID Type Priority Status Submit Date\n" + lines(
        10, lambda i: f"job-{i} service 50 running 2026-11-{10 + i}T10:00:00Z"))
    f["nomad-nodes"] = ("nomad node status", "ID Node Pool DC Name Class Drain Eligibility Status\n" + lines(
        3, lambda i: f"{i:08x} default dc1 node{i} <none> false eligible ready"))
    for job in ["web", "api"]:
        f[f"nomad-job-{job}"] = (f"nomad job status {job}", f"ID = {job}\nName = {job}\nType = service\n"
                                 f"Status = running\n\nAllocations\n" + lines(
            8, lambda i: f"{i:08x} {i % 3:08x} web {i} run running 2026-11-{20 + i % 9}T10:00:00Z"))
    f["consul-members"] = ("consul members", "Node Address Status Type Build Protocol DC Partition Segment\n" + lines(
        5, lambda i: f"node{i} 10.0.0.{10 + i}:8301 alive server 1.19.2 2 dc1 default <all>"))
    f["consul-services"] = ("consul catalog services -tags", lines(18, lambda i: f"service-{i} http,prod,v{i % 3}"))
    f["nixos-version"] = ("nixos-version", "24.11.20261120.abcdef0 (Vicuna)\n")
    f["nix-generations"] = ("nix-env --list-generations -p /nix/var/nix/profiles/system", lines(
        20, lambda i: f"  {300 + i}   2026-11-{1 + i:02d} 10:00:00{'   (current)' if i == 19 else ''}"))
    f["lsblk"] = ("lsblk", "NAME MAJ:MIN RM SIZE RO TYPE MOUNTPOINTS\n" + lines(
        8, lambda i: f"nvme0n1p{i + 1} 259:{i + 1} 0 {i * 50 + 1}G 0 part /mnt/p{i}"))
    f["smart"] = ("smartctl -H -A /dev/nvme0n1", "SMART overall-health self-assessment test result: PASSED\n" + lines(
        16, lambda i: f"Attribute {i}: value {100 - i} worst {98 - i} thresh 10"))
    f["zpool-status"] = ("zpool status", "  pool: tank\n state: ONLINE\n  scan: scrub repaired 0B\nconfig:\n" + lines(
        6, lambda i: f"\t  ata-WDC_WD40EFRX-{i:04d} ONLINE 0 0 0"))
    f["sensors"] = ("sensors", lines(10, lambda i: f"Core {i}:        +{41 + i % 7}.0°C  (high = +80.0°C, crit = +100.0°C)"))
    f["top"] = ("top -bn1 | head -40", lines(
        40, lambda i: f"{1000 + i} root 20 0 {i * 1024} {i * 300} {i * 20} S {i % 5}.0 {i % 3}.1 1:{i:02d}.00 "
                      f"{SERVICES[i % len(SERVICES)]}"))
    f["last-reboot"] = ("last reboot -n 10", lines(10, lambda i: f"reboot system boot 6.6.{60 + i} Mon Oct {i + 1} 03:00 still running"))
    f["certs"] = ("steward-certs --expiry", lines(12, lambda i: f"/etc/ssl/site{i}.pem expires 2027-0{1 + i % 9}-15 ({60 + i * 9} days)"))
    f["timedatectl"] = ("timedatectl", "Local time: Mon 2026-11-30 23:59:01 UTC\nSystem clock synchronized: yes\nNTP service: active\n")
    f["store-size"] = ("du -sh /nix/store", "38G\t/nix/store\n")
    return f


def write_host(tmp, sock, mount, podman_env):
    """The stand-in commands, the fixtures and the probe definitions."""
    fx, bin_ = tmp / "fixtures", tmp / "bin"
    fx.mkdir()
    bin_.mkdir()
    (fx / "failed.txt").write_text("backup-nightly.service loaded failed failed Nightly restic backup\n")
    (bin_ / "systemctl").write_text(
        f'#!/bin/sh\ncase "$*" in\n  *failed*) cat {fx}/failed.txt ;;\n  *) cat {fx}/units-running.txt ;;\nesac\n')
    env_line = " ".join(f"{k}={v}" for k, v in podman_env.items() if k.startswith("CONTAINERS_"))
    (bin_ / "docker").write_text(f'#!/bin/sh\nexec env {env_line} podman --runtime runc "$@"\n')
    for p in bin_.iterdir():
        p.chmod(0o755)
    probes = [("failed-units", "systemd units in the failed state",
               ["systemctl", "list-units", "--failed", "--no-legend", "--plain", "--no-pager"]),
              ("docker-containers", "every container", ["docker", "ps", "-a", "--no-trunc", "--format", "{{json .}}"]),
              ("disk", "disk use", ["df", "-h", "/", mount]),
              ("inodes", "inode use", ["df", "-i", "/", mount])]
    for name, (cmd, out) in fixtures().items():
        (fx / f"{name}.txt").write_text(out)
        probes.append((name, f"stands for `{cmd}`", ["cat", str(fx / f"{name}.txt")]))
    assert len(probes) == 40, len(probes)
    toml = "".join(
        f'[[probe]]\nname = "{n}"\ndescription = "{d}"\nkind = "command"\nargv = {json.dumps(a)}\n\n'
        for n, d, a in probes)
    ctx = tmp / "context"
    ctx.mkdir()
    (ctx / "host.toml").write_text(toml)
    (ctx / "stack.toml").write_text("# replaced: the bench's probes are in host.toml\n")
    (ctx / "checks.toml").write_text(STAND_IN_CHECKS)
    return bin_


def loop_disk(tmp):
    """An ext4 image on a loop device, mounted (in this private mount namespace) and ~93 % full."""
    img, mount = tmp / "data.img", tmp / "data"
    mount.mkdir()
    subprocess.run(["truncate", "-s", "64M", str(img)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True)
    dev = subprocess.run(["losetup", "--find", "--show", str(img)], check=True, capture_output=True,
                         text=True).stdout.strip()
    subprocess.run(["mount", dev, str(mount)], check=True)
    st = os.statvfs(mount)
    used = lambda s: (s.f_blocks - s.f_bfree) / ((s.f_blocks - s.f_bfree) + s.f_bavail)  # noqa: E731
    with open(mount / "fill", "wb") as out:
        while used(os.statvfs(mount)) < 0.93:
            out.write(b"\0" * (256 * 1024))
            out.flush()
            os.fsync(out.fileno())
    del st
    return dev, mount


def containers(podman, env):
    for name in ["web", "api", "cache", "queue", "metrics"]:
        subprocess.run(podman + ["run", "-d", "--network", "none", "--name", name, IMAGE, "sleep", "3600"],
                       env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(podman + ["run", "--network", "none", "--name", "worker", IMAGE, "sh", "-c", "echo dying; exit 137"],
                   env=env, stdout=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def model(tmp, n, port):
    scenario = tmp / f"scenario-{n}.toml"
    scenario.write_text(QUIET)
    p = subprocess.Popen([STEWARD, "dev", "scripted-model", "--addr", f"127.0.0.1:{port}", "--scenario", str(scenario)],
                         stdout=subprocess.PIPE, text=True)
    url = p.stdout.readline().strip().rsplit(" ", 1)[-1]
    return p, url


def one_run(tmp, state, bin_, sock, n, port):
    proc, url = model(tmp, n, port)
    cfg = tmp / f"steward-{n}.toml"
    cfg.write_text(f'workspace = "{tmp / "ws"}"\nstate_dir = "{state}"\ncontext_dir = "{tmp / "context"}"\n'
                   f'[claude]\nbin = "{CLAUDE}"\nbase_url = "{url}"\nmax_retries = 0\n'
                   f'path = "{bin_}:/usr/sbin:/usr/bin:/sbin:/bin"\n[docker]\nhost = "unix://{sock}"\n')
    try:
        out = subprocess.run([STEWARD, "--config", str(cfg), "--json", "run", "health-check", "--force-model"],
                             capture_output=True, text=True, env={"PATH": os.environ["PATH"], "HOME": str(tmp),
                                                                  "ANTHROPIC_API_KEY": "sk-ant-bench-0123456789"})
    finally:
        proc.kill()
        proc.wait()
    try:
        run_id = json.loads(out.stdout)["id"]
    except (ValueError, KeyError):
        sys.exit(f"the run failed: {out.stdout}\n{out.stderr}")
    run_dir = state / "runs" / run_id
    prompt = (run_dir / "prompt.md").read_text()
    if os.environ.get("SAVE_PROMPTS"):
        shutil.copy(run_dir / "prompt.md", Path(os.environ["SAVE_PROMPTS"]) / f"prompt-{n}.md")
    naive = "".join(f"== {p['name']} ==\n{text(p)}\n" for p in json.loads((run_dir / "context.json").read_text()))
    summary = json.loads((run_dir / "context-summary.json").read_text())
    full = sum(1 for p in summary["probes"] if p["in_prompt"] == "full")
    if os.environ.get("SHOW"):
        print(n, [(p["name"], p["bytes"], p["reason"]) for p in summary["probes"] if p["in_prompt"] == "full"],
              file=sys.stderr)
    return prompt, naive, full


def text(p):
    out = p["output"]
    s = out if isinstance(out, str) else "\n".join(out) if isinstance(out, list) else json.dumps(out, indent=2)
    return s + (f"\n{p['detail']}" if p.get("detail") else "")


def anomalies(prompt, mount):
    return {
        "failed unit": "backup-nightly.service" in prompt and "failed" in prompt,
        "exit 137": "worker" in prompt and ("exited 137" in prompt or "Exited (137)" in prompt),
        "disk >90%": any(mount in line and "9" in line and "%" in line for line in prompt.splitlines()),
    }


def main():
    if os.environ.get("STEWARD_BENCH_NS") != "1":
        if os.geteuid() != 0:
            sys.exit("needs root (a loop device, a private mount namespace, podman)")
        env = dict(os.environ, STEWARD_BENCH_NS="1")
        sys.exit(subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, __file__],
                                env=env).returncode)
    for tool in ["podman", "runc", "losetup", "mkfs.ext4"]:
        if not shutil.which(tool):
            sys.exit(f"needs {tool}")
    if not Path(STEWARD).exists() or not Path(CLAUDE).exists():
        sys.exit(f"needs {STEWARD} (cargo build --release) and claude at {CLAUDE}")
    tmp = Path(tempfile.mkdtemp(prefix="steward-bench-prompt-"))
    (tmp / "ws").mkdir()
    podman, env, sock, service = engine(tmp)
    dev = None
    try:
        dev, mount = loop_disk(tmp)
        containers(podman, env)
        bin_ = write_host(tmp, sock, str(mount), env)
        rows = []
        for r in range(ROUNDS):
            state = tmp / f"state-{r}"
            # The scripted model stands in for the API, which is not a listener on the host: one
            # port per round, so the snapshot does not see a port close and another open.
            port = free_port()
            for n, label in [(1, "first run"), (2, "unchanged")]:
                prompt, naive, full = one_run(tmp, state, bin_, sock, f"{r}-{n}", port)
                found = anomalies(prompt, str(mount))
                if os.environ.get("SHOW") and not all(found.values()):
                    start = prompt.find("## What changed")
                    print(prompt[start:prompt.find("## Checks")], file=sys.stderr)
                rows.append((r + 1, label, len(prompt.encode()), len(naive.encode()), full, found))
        print(f"{'round':>5} {'run':<10} {'prompt B':>9} {'naive B':>9} {'ratio':>6} {'full':>4}  anomalies in prompt")
        for r, label, p, nv, full, found in rows:
            flags = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in found.items())
            print(f"{r:>5} {label:<10} {p:>9} {nv:>9} {p / nv:>6.1%} {full:>4}  {flags}")
        ok = True
        for label, target in [("first run", 0.30), ("unchanged", 0.10)]:
            ratios = [p / nv for _, lb, p, nv, _, _ in rows if lb == label]
            med = statistics.median(ratios)
            every = all(all(f.values()) for _, lb, _, _, _, f in rows if lb == label)
            met = med <= target and (every or label == "unchanged")
            ok &= met
            print(f"median {label}: {med:.1%} of the naive bytes (target <= {target:.0%}"
                  f"{', all three anomalies present' if label == 'first run' else ''}): {'met' if met else 'NOT met'}"
                  + ("" if label == "first run" else f"; anomalies still named: {'yes' if every else 'no'}"))
        return 0 if ok else 1
    finally:
        subprocess.run(podman + ["rm", "-af"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.killpg(service.pid, 15)
        if dev:
            subprocess.run(["umount", str(tmp / "data")], stderr=subprocess.DEVNULL)
            subprocess.run(["losetup", "-d", dev], stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
