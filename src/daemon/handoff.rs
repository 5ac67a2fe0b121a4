//! The hand-off between a trigger and a running daemon: `STATE/daemon.json` (where it
//! listens), its local socket, and the client that offers a signal over that socket and reads
//! the routing decision back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::base::signal::Signal;

/// The daemon got the signal and never answered: the trigger must not run it inline too.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error(
        "the daemon (pid {pid}) received the signal but did not answer ({attempts} tries; last: \
         {reason}); not running inline, which could act twice. Check `steward serve`'s log and \
         its `routing` events"
    )]
    Unanswered {
        pid: u32,
        attempts: u32,
        reason: String,
    },
}

/// What happened to a signal offered to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "handoff")]
pub enum Handoff {
    /// The daemon took it: its router decided (`enqueue`, `merged`, `cooldown`, …) and the
    /// trigger is done; `job` is the queued job it joined or created, if any.
    Daemon {
        decision: String,
        reason: String,
        job: Option<String>,
    },
    /// No daemon is running: the trigger runs the goal inline, under the host lock.
    NoDaemon,
}

/// `STATE/daemon.json`: written by `steward serve` once it listens, removed when it stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: u32,
    /// The HTTP listener (webhooks, health, metrics).
    pub listen: String,
    /// The local socket triggers hand signals to.
    pub socket: PathBuf,
}

pub fn daemon_file(state_dir: &Path) -> PathBuf {
    state_dir.join("daemon.json")
}

pub fn daemon_socket(state_dir: &Path) -> PathBuf {
    state_dir.join("daemon.sock")
}

/// What `daemon.json` says, if it can be read (it may be left by a daemon that died).
pub fn read_daemon_info(state_dir: &Path) -> Option<DaemonInfo> {
    crate::base::ledger::read_json(&daemon_file(state_dir)).ok()
}

/// The daemon on this state directory, if one holds its lock (see [`crate::daemon::daemon_lock`]): a
/// pid in `daemon.json` proves nothing, since a dead daemon's pid can be reused. `None` also
/// when the lock is held but `daemon.json` is not written yet (a daemon still starting) or
/// cannot be read: the trigger then runs inline, under the host lock, as when a daemon does
/// not take its signal.
pub fn running_daemon(state_dir: &Path) -> Option<DaemonInfo> {
    match crate::daemon::daemon_lock::presence(state_dir) {
        crate::daemon::daemon_lock::Presence::Alive => {}
        crate::daemon::daemon_lock::Presence::Absent => return None,
        crate::daemon::daemon_lock::Presence::Unknown(why) => {
            tracing::warn!("cannot tell whether a daemon runs: {why}; running inline");
            return None;
        }
    }
    let info = read_daemon_info(state_dir);
    if info.is_none() {
        tracing::warn!(
            "a daemon holds {} but {} cannot be read (still starting?); running inline",
            crate::daemon::daemon_lock::path(state_dir).display(),
            daemon_file(state_dir).display()
        );
    }
    info
}

/// How long each step of a hand-off (connect and send; wait for the answer) may take.
const HANDOFF_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries when the daemon got the signal but its answer did not arrive.
const HANDOFF_TRIES: u32 = 3;

/// Why a hand-off did not get the daemon's decision.
#[derive(Debug)]
enum HandoffFailure {
    /// The daemon never got the signal, or answered that it did not route it (not 200): the
    /// trigger may run the goal itself.
    NotTaken(String),
    /// The whole request went out and no answer came back: the daemon may have queued it.
    Unanswered(String),
}

/// Offers a signal to a running `steward serve` over its socket in the state directory (owner
/// only: the file mode is the authentication).
///
/// No daemon, or one that did not take the signal, means `NoDaemon` and the caller runs
/// inline. If the signal went out but the answer was lost, the offer is repeated: the daemon
/// dedups by fingerprint, so a repeat joins the job the first one queued (`merged`) or meets
/// its cooldown, and never starts a second run. If no answer comes at all the trigger fails
/// rather than running inline next to a daemon that may be acting on it.
pub async fn hand_to_daemon(state_dir: &Path, signal: &Signal) -> Result<Handoff, HandoffError> {
    let Some(info) = running_daemon(state_dir) else {
        return Ok(Handoff::NoDaemon);
    };
    let mut last = String::new();
    for attempt in 1..=HANDOFF_TRIES {
        match post_signal(&info.socket, signal).await {
            Ok(h) => return Ok(h),
            Err(HandoffFailure::NotTaken(e)) => {
                tracing::warn!(
                    "the daemon (pid {}) did not take the signal: {e}; running inline",
                    info.pid
                );
                return Ok(Handoff::NoDaemon);
            }
            Err(HandoffFailure::Unanswered(e)) => {
                tracing::warn!(
                    "the daemon (pid {}) did not answer (try {attempt} of {HANDOFF_TRIES}): {e}",
                    info.pid
                );
                last = e;
            }
        }
    }
    Err(HandoffError::Unanswered {
        pid: info.pid,
        attempts: HANDOFF_TRIES,
        reason: last,
    })
}

/// One HTTP/1.1 request over the unix socket, by hand: a client library for one local POST is
/// more than this needs.
async fn post_signal(socket: &Path, signal: &Signal) -> Result<Handoff, HandoffFailure> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = serde_json::to_vec(signal).map_err(|e| HandoffFailure::NotTaken(e.to_string()))?;
    let head = format!(
        "POST /signals HTTP/1.1\r\nHost: steward\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // Until the last byte is written the daemon cannot have routed the signal.
    let send = async {
        let mut stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(&body).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(stream)
    };
    let mut stream = tokio::time::timeout(HANDOFF_TIMEOUT, send)
        .await
        .map_err(|_| HandoffFailure::NotTaken("timed out sending".into()))?
        .map_err(HandoffFailure::NotTaken)?;
    let mut raw = Vec::new();
    tokio::time::timeout(HANDOFF_TIMEOUT, stream.read_to_end(&mut raw))
        .await
        .map_err(|_| HandoffFailure::Unanswered(format!("no answer in {HANDOFF_TIMEOUT:?}")))?
        .map_err(|e| HandoffFailure::Unanswered(e.to_string()))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| HandoffFailure::Unanswered("the answer has no body".into()))?;
    let status = head.split(' ').nth(1).unwrap_or_default();
    if status != "200" {
        return Err(HandoffFailure::NotTaken(format!(
            "the daemon answered {status}: {body}"
        )));
    }
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| HandoffFailure::Unanswered(e.to_string()))?;
    let d = &v["decisions"][0];
    let decision = d["decision"].as_str().unwrap_or("unknown").to_string();
    let job = d["job_id"]
        .as_str()
        .or_else(|| d["into"].as_str())
        .map(str::to_string);
    Ok(Handoff::Daemon {
        decision,
        reason: d["reason"].as_str().unwrap_or_default().to_string(),
        job,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_daemon_without_a_live_pid_file() {
        let dir = tempfile::tempdir().unwrap();
        let h = hand_to_daemon(dir.path(), &Signal::timer("health-check"))
            .await
            .unwrap();
        assert_eq!(h, Handoff::NoDaemon);
        // A pid file left by a daemon that is gone is ignored, even when its pid is alive
        // (reused): nobody holds the daemon's lock.
        let stale = DaemonInfo {
            pid: std::process::id(),
            listen: "127.0.0.1:1".into(),
            socket: daemon_socket(dir.path()),
        };
        crate::base::ledger::write_json(&daemon_file(dir.path()), &stale).unwrap();
        let h = hand_to_daemon(dir.path(), &Signal::timer("health-check"))
            .await
            .unwrap();
        assert_eq!(h, Handoff::NoDaemon);
    }

    /// A stand-in daemon on this state directory: answers the `n`-th connection (from 0) with
    /// what `answer(n)` returns, after reading the whole request; `None` closes without a word.
    fn fake_daemon(
        dir: &Path,
        answer: impl Fn(usize) -> Option<String> + Send + 'static,
    ) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // Held for the rest of the test, like a daemon holds it for its life.
        std::mem::forget(crate::daemon::daemon_lock::hold(dir).unwrap());
        let socket = daemon_socket(dir);
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let info = DaemonInfo {
            pid: std::process::id(),
            listen: "127.0.0.1:1".into(),
            socket,
        };
        crate::base::ledger::write_json(&daemon_file(dir), &info).unwrap();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let k = stream.read(&mut buf).await.unwrap();
                    raw.extend_from_slice(&buf[..k]);
                    let text = String::from_utf8_lossy(&raw).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .unwrap()
                            .parse()
                            .unwrap();
                        if body.len() >= len {
                            break;
                        }
                    }
                    assert!(k > 0, "the request ended early");
                }
                if let Some(a) = answer(n) {
                    stream.write_all(a.as_bytes()).await.unwrap();
                }
            }
        });
        seen
    }

    fn http_answer(status: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn a_lost_answer_is_asked_again_never_run_inline() {
        let dir = tempfile::tempdir().unwrap();
        let tries = fake_daemon(dir.path(), |n| {
            (n == 1).then(|| {
                http_answer(
                    "200 OK",
                    r#"{"accepted":1,"decisions":[{"decision":"merged","into":"j1","reason":"r"}]}"#,
                )
            })
        });
        let h = hand_to_daemon(dir.path(), &Signal::timer("health-check"))
            .await
            .unwrap();
        assert_eq!(
            h,
            Handoff::Daemon {
                decision: "merged".into(),
                reason: "r".into(),
                job: Some("j1".into())
            }
        );
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_daemon_that_never_answers_fails_the_trigger() {
        let dir = tempfile::tempdir().unwrap();
        let tries = fake_daemon(dir.path(), |_| None);
        let e = hand_to_daemon(dir.path(), &Signal::timer("health-check"))
            .await
            .unwrap_err();
        assert!(
            matches!(e, HandoffError::Unanswered { attempts: 3, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("not running inline"), "{e}");
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_daemon_that_refuses_lets_the_trigger_run_inline() {
        let dir = tempfile::tempdir().unwrap();
        let tries = fake_daemon(dir.path(), |_| {
            Some(http_answer(
                "503 Service Unavailable",
                r#"{"error":"stopping"}"#,
            ))
        });
        let h = hand_to_daemon(dir.path(), &Signal::timer("health-check"))
            .await
            .unwrap();
        assert_eq!(h, Handoff::NoDaemon);
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
