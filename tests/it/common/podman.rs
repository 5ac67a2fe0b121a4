//! A real container engine for tests: podman serving the Docker API on a socket in a temporary
//! directory, with its own storage, configuration and an image imported from the host's static
//! busybox (no registry is reachable). Recipe: `/work/shared/reference/real-peers.md`. Dropping
//! it removes every container it ran and kills the service's process group.
//!
//! Needs `podman`, `runc` and a static `/bin/busybox` (Debian `podman runc busybox-static`):
//! missing, the test skips, or fails under `CI=true` (see `require`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::require;

/// The image every test container runs: busybox with `sh`, `httpd` and a few applets.
pub const IMAGE: &str = "localhost/busybox:test";

const APPLETS: [&str; 7] = ["sh", "sleep", "echo", "cat", "httpd", "wget", "ls"];

pub struct Podman {
    dir: tempfile::TempDir,
    podman: PathBuf,
    service: std::process::Child,
}

impl Podman {
    /// Starts the engine, or `None` (after `require::missing`) when a part is not installed.
    pub fn start() -> Option<Podman> {
        let podman = require::tool("podman")?;
        require::tool("runc")?;
        let busybox = require::executable(
            Path::new("/bin/busybox"),
            "a static busybox",
            "apt-get install busybox-static",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("steward-podman-")
            .tempdir()
            .unwrap();
        write_config(dir.path());
        let mut me = Podman {
            service: spawn_service(&podman, dir.path()),
            dir,
            podman,
        };
        me.import_image(&busybox);
        me.wait_ready();
        Some(me)
    }

    /// The socket, as `DOCKER_HOST` names it.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("podman.sock")
    }

    /// The environment every podman call (and the service) gets: this engine's own config and
    /// storage, never the host's.
    pub fn env(&self) -> Vec<(String, String)> {
        env_for(self.dir.path())
    }

    /// `podman ARGS` against this engine.
    pub fn podman(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.podman);
        // conmon writes files (an `oom` marker) into its working directory: never the checkout.
        cmd.args(["--runtime", "runc"])
            .args(args)
            .current_dir(self.dir.path());
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// The ids of the running containers of compose project `project`.
    pub fn running(&self, project: &str) -> Vec<String> {
        let label = format!("label=com.docker.compose.project={project}");
        let out = self.podman(&["ps", "-q", "--no-trunc", "--filter", &label]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn import_image(&mut self, busybox: &Path) {
        let root = self.dir.path().join("image-root");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        let tar = self.dir.path().join("image.tar");
        let made = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(made.success(), "tar failed");
        let tar = tar.display().to_string();
        let out = self.podman(&["import", "--quiet", &tar, IMAGE]);
        assert!(
            out.status.success(),
            "podman import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The API answers `_ping` (within 20 s, or the test fails with the service's log).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if ping(&self.socket()) {
                return;
            }
            if let Ok(Some(status)) = self.service.try_wait() {
                panic!("podman system service ended ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "podman system service did not answer within 20 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the engine's service and starts it again on the same socket and storage: what an
    /// engine restart looks like to a client.
    pub fn restart_service(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.service.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.service.wait();
        let _ = std::fs::remove_file(self.socket());
        self.service = spawn_service(&self.podman, self.dir.path());
        self.wait_ready();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers first (their mounts live in this directory), then the service's group.
        let _ = self.podman(&["rm", "--all", "--force", "--time", "0"]);
        let group = nix::unistd::Pid::from_raw(self.service.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.service.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.service.wait();
    }
}

fn env_for(dir: &Path) -> Vec<(String, String)> {
    vec![
        (
            "CONTAINERS_CONF".into(),
            dir.join("containers.conf").display().to_string(),
        ),
        (
            "CONTAINERS_STORAGE_CONF".into(),
            dir.join("storage.conf").display().to_string(),
        ),
    ]
}

/// crun fails here on rlimits and cgroups: runc, cgroupfs, no default ulimits; events to a file
/// (there is no journald); every state directory inside `dir`, so that tests never share one.
fn write_config(dir: &Path) {
    let d = dir.display();
    std::fs::write(
        dir.join("containers.conf"),
        format!(
            "[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\nevents_logfile_path = \"{d}/events.log\"\n\
             runtime = \"runc\"\ntmp_dir = \"{d}/tmp\"\nvolume_path = \"{d}/volumes\"\n\
             [network]\nnetwork_config_dir = \"{d}/net\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("storage.conf"),
        format!("[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/graph\"\nrunroot = \"{d}/run\"\n"),
    )
    .unwrap();
}

/// `podman system service` in a process group of its own (so drop kills all of it).
fn spawn_service(podman: &Path, dir: &Path) -> std::process::Child {
    let log = std::fs::File::create(dir.join("service.log")).unwrap();
    let mut cmd = Command::new(podman);
    cmd.args(["--runtime", "runc", "system", "service", "--time=0"])
        .arg(format!("unix://{}", dir.join("podman.sock").display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .current_dir(dir)
        .process_group(0);
    for (k, v) in env_for(dir) {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// `GET /_ping` on the socket answers `OK`.
fn ping(socket: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.") && reply.ends_with("OK")
}
