//! Running probes: all at once, each bounded in time and size, none able to stop the run.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{ParseMode, ProbeDef, ProbeKind, ProbeResult, ProbeStatus};
use crate::base::exec::{self, ExecError};
use crate::base::redact::Redactor;

/// Bytes of a command's stderr kept for `detail`: the end is where the error usually is.
const STDERR_TAIL: usize = 2048;

/// What a probe produced before redaction and parsing.
struct Raw {
    status: ProbeStatus,
    text: String,
    truncated: bool,
    detail: Option<String>,
    exit_code: Option<i32>,
}

impl Raw {
    fn empty(status: ProbeStatus, detail: String) -> Raw {
        Raw {
            status,
            text: String::new(),
            truncated: false,
            detail: Some(detail),
            exit_code: None,
        }
    }
}

/// Runs every probe concurrently; never fails as a whole. Results come back in the order of
/// `probes`. `path_env` is the only PATH command probes see.
pub async fn gather(probes: &[ProbeDef], redactor: &Redactor, path_env: &str) -> Vec<ProbeResult> {
    let redactor = Arc::new(redactor.clone());
    let path_env: Arc<str> = Arc::from(path_env);
    // One client for all HTTP probes; built only if one is selected.
    let client = if probes
        .iter()
        .any(|p| matches!(p.kind, ProbeKind::Http { .. }))
    {
        Some(http_client())
    } else {
        None
    };
    let handles: Vec<_> = probes
        .iter()
        .cloned()
        .map(|def| {
            let redactor = Arc::clone(&redactor);
            let path_env = Arc::clone(&path_env);
            let client = client.clone();
            tokio::spawn(async move { run_one(&def, &redactor, &path_env, client).await })
        })
        .collect();
    let mut out = Vec::with_capacity(probes.len());
    for (def, handle) in probes.iter().zip(handles) {
        match handle.await {
            Ok(result) => out.push(result),
            // A panic inside one probe is that probe's failure, not the run's.
            Err(e) => out.push(ProbeResult {
                name: def.name.clone(),
                description: def.description.clone(),
                status: ProbeStatus::Failed,
                output: serde_json::Value::String(String::new()),
                truncated: false,
                detail: Some(format!("probe task failed: {e}")),
                exit_code: None,
                duration_ms: 0,
            }),
        }
    }
    out
}

/// The shared client, or why there is none. The error is kept as text on purpose: it is the
/// `detail` every HTTP probe result records (data, cloned per probe), not an error to propagate.
type Client = Option<Result<reqwest::Client, String>>;

fn http_client() -> Result<reqwest::Client, String> {
    // Probes look at local services: a proxy from the environment must not see them, and a
    // redirect to somewhere else is not what the operator declared.
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

async fn run_one(
    def: &ProbeDef,
    redactor: &Redactor,
    path_env: &str,
    client: Client,
) -> ProbeResult {
    let started = Instant::now();
    let raw = match &def.kind {
        ProbeKind::Command { argv } => run_command(def, argv, path_env).await,
        ProbeKind::Http { url } => match client {
            Some(Ok(c)) => run_http(def, &c, url).await,
            Some(Err(e)) => Raw::empty(ProbeStatus::Failed, e),
            None => Raw::empty(ProbeStatus::Failed, "no HTTP client".into()),
        },
        ProbeKind::File { path, tail_lines } => run_file(def, path, *tail_lines).await,
    };
    finish(def, raw, redactor, started.elapsed())
}

/// Redacts, then shapes the output by parse mode. JSON is parsed before redaction (a redaction
/// marker in place of a bare number would make it invalid) and redacted as a value after.
fn finish(def: &ProbeDef, raw: Raw, redactor: &Redactor, elapsed: Duration) -> ProbeResult {
    let mut status = raw.status;
    let mut detail = raw.detail.map(|d| redactor.redact(&d));
    let output = match def.parse {
        ParseMode::Text => serde_json::Value::String(redactor.redact(&raw.text)),
        ParseMode::Lines => serde_json::Value::Array(
            redactor
                .redact(&raw.text)
                .lines()
                .map(|l| serde_json::Value::String(l.to_string()))
                .collect(),
        ),
        ParseMode::Json => match serde_json::from_str::<serde_json::Value>(&raw.text) {
            Ok(mut v) => {
                redactor.redact_json(&mut v);
                v
            }
            Err(e) => {
                // A failed or unavailable probe rarely prints JSON; only an OK one is faulted.
                if status == ProbeStatus::Ok {
                    status = ProbeStatus::Failed;
                    let cut = if raw.truncated {
                        " (the output was cut at max_bytes)"
                    } else {
                        ""
                    };
                    let reason = format!("output is not valid JSON: {e}{cut}");
                    detail = Some(match detail {
                        Some(d) => format!("{reason}; {d}"),
                        None => reason,
                    });
                }
                serde_json::Value::String(redactor.redact(&raw.text))
            }
        },
    };
    ProbeResult {
        name: def.name.clone(),
        description: def.description.clone(),
        status,
        output,
        truncated: raw.truncated,
        detail,
        exit_code: raw.exit_code,
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
    }
}

async fn run_command(def: &ProbeDef, argv: &[String], path_env: &str) -> Raw {
    let program = argv.first().map(String::as_str).unwrap_or_default();
    let out = match exec::run(&exec::Command {
        argv,
        path_env,
        cwd: None,
        timeout: def.timeout,
        stdout_cap: def.max_bytes,
        stderr_tail: STDERR_TAIL,
    })
    .await
    {
        Ok(out) => out,
        Err(ExecError::NotFound { program, why }) => {
            return Raw::empty(
                ProbeStatus::NotAvailable,
                format!("`{program}` not installed ({why})"),
            );
        }
        Err(e) => return Raw::empty(ProbeStatus::Failed, e.to_string()),
    };
    let stderr = out.stderr.trim().to_string();
    let with_stderr = |head: String| {
        if stderr.is_empty() {
            head
        } else {
            format!("{head}; stderr: {stderr}")
        }
    };
    let raw = |status, detail| Raw {
        status,
        text: out.stdout.clone(),
        truncated: out.stdout_truncated,
        detail,
        exit_code: out.exit_code(),
    };
    if out.timed_out() {
        return raw(
            ProbeStatus::TimedOut,
            Some(with_stderr(out.describe(def.timeout))),
        );
    }
    // A tool that exits 0 while saying it has nothing to look at (journalctl without journal
    // files) is unavailable too; only stderr counts then, since normal output (log lines) may
    // quote the same words.
    let success = out.exit_code() == Some(0);
    let stdout_for_match = if success { "" } else { out.stdout.as_str() };
    if let Some(line) = unavailable_line(&def.unavailable_when, &stderr, stdout_for_match) {
        return raw(
            ProbeStatus::NotAvailable,
            Some(format!("`{program}`: not available: {line}")),
        );
    }
    if success {
        return raw(
            ProbeStatus::Ok,
            (!stderr.is_empty()).then(|| stderr.clone()),
        );
    }
    raw(
        ProbeStatus::Failed,
        Some(with_stderr(format!(
            "`{program}` {}",
            out.describe(def.timeout)
        ))),
    )
}

/// The first line of stderr (else stdout) that contains one of the patterns.
fn unavailable_line(patterns: &[String], stderr: &str, stdout: &str) -> Option<String> {
    if patterns.is_empty() {
        return None;
    }
    stderr.lines().chain(stdout.lines()).find_map(|l| {
        patterns
            .iter()
            .any(|p| l.contains(p.as_str()))
            .then(|| l.trim().to_string())
    })
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

async fn run_http(def: &ProbeDef, client: &reqwest::Client, url: &str) -> Raw {
    let fetch = async {
        let mut resp = client.get(url).timeout(def.timeout).send().await?;
        let status = resp.status();
        let mut body: Vec<u8> = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = resp.chunk().await? {
            let room = def.max_bytes.saturating_sub(body.len());
            if chunk.len() > room {
                truncated = true;
            }
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            // Unlike a pipe, an HTTP body can simply be abandoned once the cap is reached.
            if truncated {
                break;
            }
        }
        Ok::<_, reqwest::Error>((status, body, truncated))
    };
    match tokio::time::timeout(def.timeout, fetch).await {
        Err(_) => Raw::empty(
            ProbeStatus::TimedOut,
            format!("timed out after {}", secs(def.timeout)),
        ),
        Ok(Err(e)) if e.is_timeout() => Raw::empty(
            ProbeStatus::TimedOut,
            format!("timed out after {}: {e}", secs(def.timeout)),
        ),
        Ok(Err(e)) if e.is_connect() => Raw::empty(
            ProbeStatus::NotAvailable,
            format!("cannot connect: {}", error_chain(&e)),
        ),
        Ok(Err(e)) => Raw::empty(ProbeStatus::Failed, error_chain(&e)),
        Ok(Ok((status, body, truncated))) => Raw {
            status: if status.is_success() {
                ProbeStatus::Ok
            } else {
                ProbeStatus::Failed
            },
            text: String::from_utf8_lossy(&body).into_owned(),
            truncated,
            detail: Some(format!("HTTP {status}")),
            exit_code: None,
        },
    }
}

/// An error with its causes: reqwest's own message rarely says why ("error sending request").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

async fn run_file(def: &ProbeDef, path: &Path, tail_lines: usize) -> Raw {
    let owned = path.to_path_buf();
    let cap = def.max_bytes;
    let task = tokio::task::spawn_blocking(move || tail_file(&owned, tail_lines, cap));
    match tokio::time::timeout(def.timeout, task).await {
        Err(_) => Raw::empty(
            ProbeStatus::TimedOut,
            format!(
                "reading {} timed out after {}",
                path.display(),
                secs(def.timeout)
            ),
        ),
        Ok(Err(e)) => Raw::empty(ProbeStatus::Failed, format!("file task failed: {e}")),
        Ok(Ok(Err(e))) if e.kind() == std::io::ErrorKind::NotFound => Raw::empty(
            ProbeStatus::NotAvailable,
            format!("`{}` does not exist", path.display()),
        ),
        Ok(Ok(Err(e))) => Raw::empty(
            ProbeStatus::Failed,
            format!("cannot read {}: {e}", path.display()),
        ),
        Ok(Ok(Ok((text, truncated)))) => Raw {
            status: ProbeStatus::Ok,
            text,
            truncated,
            detail: None,
            exit_code: None,
        },
    }
}

/// The last `tail_lines` lines, reading at most `cap` bytes from the end, so that a large log is
/// not read whole. `truncated` means the cap cut into the lines that were asked for.
fn tail_file(path: &Path, tail_lines: usize, cap: usize) -> std::io::Result<(String, bool)> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let cap64 = u64::try_from(cap).unwrap_or(u64::MAX);
    // Files in /proc report a length of 0 and are read from the start.
    let skipped = len > cap64;
    if skipped {
        f.seek(SeekFrom::Start(len - cap64))?;
    }
    let mut buf: Vec<u8> = Vec::new();
    f.take(cap64).read_to_end(&mut buf)?;
    let filled = len == 0 && buf.len() == cap;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if skipped && !lines.is_empty() {
        // The first line starts somewhere inside a line.
        lines.remove(0);
    }
    let truncated = (skipped && lines.len() < tail_lines) || filled;
    let start = lines.len().saturating_sub(tail_lines);
    Ok((lines[start..].join("\n"), truncated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defs::probe::{Catalog, ProbeDefaults};
    use tokio::io::AsyncReadExt;

    const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

    fn defs(text: &str) -> Vec<ProbeDef> {
        let file = crate::defs::bundled::SourceFile {
            origin: "test.toml".into(),
            stem: "test".into(),
            text: text.into(),
        };
        Catalog::load(
            &[file],
            ProbeDefaults {
                timeout: Duration::from_secs(5),
                max_bytes: 4096,
            },
        )
        .unwrap()
        .probes
    }

    async fn one(text: &str) -> ProbeResult {
        let mut r = gather(&defs(text), &Redactor::default(), PATH).await;
        assert_eq!(r.len(), 1);
        r.remove(0)
    }

    #[tokio::test]
    async fn command_text_ok() {
        let r = one(
            "[[probe]]\nname = \"e\"\nkind = \"command\"\nargv = [\"echo\", \"hello world\"]\n",
        )
        .await;
        assert_eq!(r.status, ProbeStatus::Ok);
        assert_eq!(r.output, "hello world\n");
        assert_eq!(r.exit_code, Some(0));
        assert!(!r.truncated);
    }

    #[tokio::test]
    async fn command_env_is_clean() {
        // The test process has HOME and more set; the probe must see only these three.
        let r = one(
            "[[probe]]\nname = \"env\"\nkind = \"command\"\nargv = [\"env\"]\nparse = \"lines\"\n",
        )
        .await;
        assert_eq!(r.status, ProbeStatus::Ok);
        let mut lines: Vec<String> = r
            .output
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "LANG=C".to_string(),
                "LC_ALL=C".into(),
                format!("PATH={PATH}")
            ]
        );
    }

    #[tokio::test]
    async fn command_lines_and_json() {
        let r = one("[[probe]]\nname = \"l\"\nkind = \"command\"\nargv = [\"printf\", \"a\\nb\\n\"]\nparse = \"lines\"\n").await;
        assert_eq!(r.output, serde_json::json!(["a", "b"]));
        let r = one("[[probe]]\nname = \"j\"\nkind = \"command\"\nargv = [\"echo\", \"{\\\"a\\\": [1, 2]}\"]\nparse = \"json\"\n").await;
        assert_eq!(r.status, ProbeStatus::Ok);
        assert_eq!(r.output, serde_json::json!({"a": [1, 2]}));
    }

    #[tokio::test]
    async fn bad_json_fails_with_reason_and_raw_text() {
        let r = one("[[probe]]\nname = \"j\"\nkind = \"command\"\nargv = [\"echo\", \"not json\"]\nparse = \"json\"\n").await;
        assert_eq!(r.status, ProbeStatus::Failed);
        assert_eq!(r.output, "not json\n");
        assert!(r.detail.unwrap().contains("not valid JSON"));
    }

    #[tokio::test]
    async fn nonzero_exit_is_failed_with_output_and_stderr() {
        let r = one("[[probe]]\nname = \"ls\"\nkind = \"command\"\nargv = [\"ls\", \"/\", \"/definitely-not-here\"]\n").await;
        assert_eq!(r.status, ProbeStatus::Failed);
        assert_eq!(r.exit_code, Some(2));
        assert!(r.output.as_str().unwrap().contains("usr"), "{:?}", r.output);
        let d = r.detail.unwrap();
        assert!(d.contains("exited with code 2"), "{d}");
        assert!(d.contains("definitely-not-here"), "{d}");
    }

    #[tokio::test]
    async fn missing_binary_is_not_available() {
        let r = one("[[probe]]\nname = \"n\"\nkind = \"command\"\nargv = [\"no-such-tool-xyz\", \"job\", \"status\"]\n").await;
        assert_eq!(r.status, ProbeStatus::NotAvailable);
        assert_eq!(
            r.detail.as_deref(),
            Some("`no-such-tool-xyz` not installed (not found in PATH)")
        );
        let r = one("[[probe]]\nname = \"n\"\nkind = \"command\"\nargv = [\"/nope/tool\"]\n").await;
        assert_eq!(r.status, ProbeStatus::NotAvailable);
    }

    #[tokio::test]
    async fn unavailable_when_pattern() {
        let r = one("[[probe]]\nname = \"d\"\nkind = \"command\"\nargv = [\"ls\", \"/Cannot-connect-here\"]\nunavailable_when = [\"Cannot-connect\"]\n").await;
        assert_eq!(r.status, ProbeStatus::NotAvailable, "{:?}", r.detail);
        assert!(r.detail.unwrap().contains("not available: ls"));
    }

    #[tokio::test]
    async fn output_is_capped_and_marked() {
        let r = one("[[probe]]\nname = \"big\"\nkind = \"command\"\nargv = [\"seq\", \"1\", \"100000\"]\nmax_bytes = 100\n").await;
        assert_eq!(r.status, ProbeStatus::Ok);
        assert!(r.truncated);
        assert_eq!(r.output.as_str().unwrap().len(), 100);
    }

    fn alive(pid: i32) -> bool {
        // A zombie is not alive for our purposes: check /proc state.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(s) => !s
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        // The probe's own program is a shell here only to start a grandchild that outlives it;
        // probes never get a shell from steward.
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let text = format!(
            "[[probe]]\nname = \"slow\"\nkind = \"command\"\nargv = [\"sh\", \"-c\", {script:?}]\ntimeout_secs = 0.5\n"
        );
        let started = Instant::now();
        let r = one(&text).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(r.status, ProbeStatus::TimedOut);
        assert!(r.detail.unwrap().contains("process group killed"));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SIGKILL is asynchronous; give the kernel a moment.
        for _ in 0..50 {
            if !alive(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(pid), "grandchild {pid} survived the timeout");
    }

    #[tokio::test]
    async fn background_child_does_not_outlive_a_quick_exit() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let script = format!("sleep 30 & echo $! > {}; echo done", pidfile.display());
        let text = format!(
            "[[probe]]\nname = \"bg\"\nkind = \"command\"\nargv = [\"sh\", \"-c\", {script:?}]\ntimeout_secs = 5\n"
        );
        let started = Instant::now();
        let r = one(&text).await;
        assert_eq!(r.status, ProbeStatus::Ok);
        assert_eq!(r.output, "done\n");
        assert!(started.elapsed() < Duration::from_secs(3));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        for _ in 0..50 {
            if !alive(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(pid), "background child {pid} was orphaned");
    }

    #[tokio::test]
    async fn probes_run_concurrently_in_order() {
        let mut text = String::new();
        for i in 0..10 {
            text.push_str(&format!(
                "[[probe]]\nname = \"s{i}\"\nkind = \"command\"\nargv = [\"sleep\", \"0.3\"]\n"
            ));
        }
        let started = Instant::now();
        let r = gather(&defs(&text), &Redactor::default(), PATH).await;
        let took = started.elapsed();
        assert_eq!(r.len(), 10);
        assert!(r.iter().all(|p| p.status == ProbeStatus::Ok));
        let names: Vec<_> = r.iter().map(|p| p.name.clone()).collect();
        assert_eq!(names, (0..10).map(|i| format!("s{i}")).collect::<Vec<_>>());
        assert!(took < Duration::from_millis(1500), "took {took:?}");
    }

    #[tokio::test]
    async fn secrets_are_redacted_from_output_and_detail() {
        let text = "[[probe]]\nname = \"leak\"\nkind = \"command\"\nargv = [\"ls\", \"/password=hunter2\", \"/planted-value-123\"]\n";
        let red = Redactor::new(vec!["planted-value-123".into()]);
        let r = gather(&defs(text), &red, PATH).await.remove(0);
        let s = serde_json::to_string(&r).unwrap();
        assert!(!s.contains("hunter2"), "{s}");
        assert!(!s.contains("planted-value-123"), "{s}");
        let text = "[[probe]]\nname = \"j\"\nkind = \"command\"\nargv = [\"echo\", \"{\\\"token\\\": 12345, \\\"x\\\": \\\"sk-ant-api03-abcdefghijkl\\\"}\"]\nparse = \"json\"\n";
        let r = gather(&defs(text), &red, PATH).await.remove(0);
        assert_eq!(r.status, ProbeStatus::Ok);
        assert_eq!(r.output["token"], "[REDACTED:secret]");
        assert_eq!(r.output["x"], "[REDACTED:anthropic]");
    }

    #[tokio::test]
    async fn file_tail_missing_and_proc() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let body: String = (1..=500).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, body).unwrap();
        let text = format!(
            "[[probe]]\nname = \"f\"\nkind = \"file\"\npath = {:?}\ntail_lines = 3\nparse = \"lines\"\n",
            log.display().to_string()
        );
        let r = one(&text).await;
        assert_eq!(r.status, ProbeStatus::Ok);
        assert_eq!(
            r.output,
            serde_json::json!(["line 498", "line 499", "line 500"])
        );
        assert!(!r.truncated);
        // A byte cap smaller than the lines asked for.
        let text = format!(
            "[[probe]]\nname = \"f\"\nkind = \"file\"\npath = {:?}\ntail_lines = 100\nmax_bytes = 30\nparse = \"lines\"\n",
            log.display().to_string()
        );
        let r = one(&text).await;
        assert!(r.truncated);
        assert_eq!(r.output.as_array().unwrap().last().unwrap(), "line 500");
        assert!(
            r.output
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l.as_str().unwrap().starts_with("line "))
        );
        let r =
            one("[[probe]]\nname = \"m\"\nkind = \"file\"\npath = \"/no/such/file.log\"\n").await;
        assert_eq!(r.status, ProbeStatus::NotAvailable);
        assert_eq!(
            r.detail.as_deref(),
            Some("`/no/such/file.log` does not exist")
        );
        let r =
            one("[[probe]]\nname = \"load\"\nkind = \"file\"\npath = \"/proc/loadavg\"\n").await;
        assert_eq!(r.status, ProbeStatus::Ok);
        assert_eq!(r.output.as_str().unwrap().split_whitespace().count(), 5);
    }

    #[tokio::test]
    async fn bundled_probes_report_cleanly_here() {
        let files =
            crate::defs::bundled::files(crate::defs::bundled::Kind::Context, None, false, "toml")
                .unwrap();
        let catalog = Catalog::load(
            &files,
            ProbeDefaults {
                timeout: Duration::from_secs(10),
                max_bytes: 16384,
            },
        )
        .unwrap();
        let results = gather(&catalog.probes, &Redactor::default(), PATH).await;
        for r in &results {
            eprintln!(
                "{:<18} {:<13} {:?}",
                r.name,
                r.status.as_str(),
                r.detail.as_deref().unwrap_or("")
            );
            assert_ne!(r.status, ProbeStatus::TimedOut, "{}", r.name);
            if r.status != ProbeStatus::Ok {
                let d = r.detail.as_deref().unwrap_or("");
                assert!(!d.is_empty(), "{} says nothing about why", r.name);
            }
        }
        let by = |n: &str| results.iter().find(|r| r.name == n).unwrap();
        // Present on any Linux host running the tests.
        assert_eq!(by("load").status, ProbeStatus::Ok);
        assert_eq!(by("memory").status, ProbeStatus::Ok);
        // Tools this kind of host lacks report that plainly, whichever is missing.
        for name in ["nomad-jobs", "consul-members", "nixos-version"] {
            let r = by(name);
            if r.status == ProbeStatus::NotAvailable {
                assert!(r.detail.as_deref().unwrap_or("").contains("not"), "{name}");
            }
        }
    }

    /// A one-shot loopback HTTP server answering every request with `status` and `body`.
    async fn serve(status: &'static str, body: &'static str) -> std::net::SocketAddr {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = [0u8; 2048];
                let _ = sock.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn http_json_ok_error_and_refused() {
        let addr = serve(
            "200 OK",
            r#"{"Leader": "10.0.0.1:4647", "secret_id": "abc-123"}"#,
        )
        .await;
        let r = one(&format!(
            "[[probe]]\nname = \"h\"\nkind = \"http\"\nurl = \"http://{addr}/v1/status\"\nparse = \"json\"\n"
        ))
        .await;
        assert_eq!(r.status, ProbeStatus::Ok, "{:?}", r.detail);
        assert_eq!(r.output["Leader"], "10.0.0.1:4647");
        assert_eq!(r.output["secret_id"], "[REDACTED:secret]");
        assert_eq!(r.detail.as_deref(), Some("HTTP 200 OK"));

        let addr = serve("503 Service Unavailable", "no leader").await;
        let r = one(&format!(
            "[[probe]]\nname = \"h\"\nkind = \"http\"\nurl = \"http://{addr}/\"\n"
        ))
        .await;
        assert_eq!(r.status, ProbeStatus::Failed);
        assert_eq!(r.output, "no leader");
        assert!(r.detail.unwrap().contains("503"));

        // A port that was just free: nothing listens there.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let r = one(&format!(
            "[[probe]]\nname = \"h\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{port}/\"\n"
        ))
        .await;
        assert_eq!(r.status, ProbeStatus::NotAvailable, "{:?}", r.detail);
        assert!(r.detail.unwrap().contains("cannot connect"));
    }

    #[tokio::test]
    async fn http_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts and never answers.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        let r = one(&format!(
            "[[probe]]\nname = \"h\"\nkind = \"http\"\nurl = \"http://{addr}/\"\ntimeout_secs = 0.3\n"
        ))
        .await;
        assert_eq!(r.status, ProbeStatus::TimedOut, "{:?}", r.detail);
    }
}
