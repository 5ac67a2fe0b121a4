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
