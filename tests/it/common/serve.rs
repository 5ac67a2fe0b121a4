//! A running `steward serve` for a test: started from a prepared command (config, environment),
//! listening on a free loopback port, its URL read from the first line it prints; killed on drop.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use super::cli::Env;

pub struct Serve {
    pub child: Child,
    pub url: String,
}

impl Serve {
    /// `steward serve --listen 127.0.0.1:0` with the env's config.
    pub fn start(env: &Env) -> Serve {
        Serve::start_with(env.steward())
    }

    /// `CMD serve --listen 127.0.0.1:0`: `cmd` is steward with its config and environment set.
    pub fn start_with(mut cmd: Command) -> Serve {
        let (child, url) = listening(cmd.args(["serve", "--listen", "127.0.0.1:0"]));
        Serve { child, url }
    }

    /// SIGTERM, and the daemon's clean exit within `secs`.
    pub fn stop_within(&mut self, secs: u64) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "serve did not stop within {secs} s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// [`Serve::stop_within`] 20 s, and the exit a success.
    pub fn stop(mut self) {
        let status = self.stop_within(20);
        assert!(status.success(), "serve exited with {status}");
    }
}

/// Spawns `cmd` (a server that prints `… listening on URL` first) and reads its URL; stderr is
/// the test's.
pub fn listening(cmd: &mut Command) -> (Child, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap_or("").to_string();
    assert!(
        url.starts_with("http://"),
        "did not start: first line {line:?}, exit {:?}",
        child.try_wait()
    );
    (child, url)
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
