//! Running checks. Every check produces a result; nothing here returns an error, because a check
//! that cannot be evaluated is itself a finding (`error` or `unavailable`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::{CheckDef, CheckKind, CheckRegex, CheckResult, CheckStatus, JsonCompare, JsonExpect};
use crate::base::exec::{self, ExecError};
use crate::defs::probe::error_chain;

/// Output beyond this is read and discarded, so a chatty command can neither block on a full
/// pipe nor exhaust memory.
const MAX_STDOUT: usize = 1024 * 1024;
const MAX_STDERR: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;
/// File contents searched by `contains`.
const MAX_FILE: u64 = 8 * 1024 * 1024;
/// Observed text kept in a result: enough to see what went wrong, small enough for a record.
const MAX_OBSERVED: usize = 2000;

/// Where and how command checks run.
#[derive(Debug, Clone)]
pub struct CheckEnv {
    /// The only PATH a command sees (the environment is otherwise cleared).
    pub path_env: String,
    /// Working directory of command checks (the workspace, so `nix flake check` sees the flake).
    pub cwd: Option<PathBuf>,
    /// The Docker API socket `container` checks ask (`[docker] host`); `None`: unavailable.
    pub docker_host: Option<String>,
}

impl Default for CheckEnv {
    fn default() -> Self {
        CheckEnv {
            path_env: std::env::var("PATH").unwrap_or_else(|_| {
                "/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                    .to_string()
            }),
            cwd: None,
            docker_host: crate::config::docker::DockerConfig::default().socket(),
        }
    }
}

/// Runs every check concurrently with steward's own PATH and working directory.
pub async fn run_checks(checks: &[CheckDef]) -> Vec<CheckResult> {
    run_checks_in(checks, &CheckEnv::default()).await
}

/// Runs every check concurrently; results are in the order of `checks`.
pub async fn run_checks_in(checks: &[CheckDef], env: &CheckEnv) -> Vec<CheckResult> {
    let handles: Vec<_> = checks
        .iter()
        .cloned()
        .map(|c| {
            let env = env.clone();
            tokio::spawn(async move { run_one(&c, &env).await })
        })
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for (handle, def) in handles.into_iter().zip(checks) {
        out.push(match handle.await {
            Ok(r) => r,
            // A panic inside one check must not lose the others' results.
            Err(e) => result(
                def,
                CheckStatus::Error,
                Value::Null,
                Some(format!("check task failed: {e}")),
                Duration::ZERO,
            ),
        });
    }
    out
}

/// One check, bounded by its timeout.
pub async fn run_one(def: &CheckDef, env: &CheckEnv) -> CheckResult {
    let start = Instant::now();
    let (status, observed, detail) = match &def.kind {
        CheckKind::Command { .. } => command(def, env).await,
        other => match tokio::time::timeout(def.timeout, evaluate(other, def.timeout, env)).await {
            Ok(r) => r,
            Err(_) => (
                CheckStatus::Fail,
                Value::Null,
                Some(format!("timed out after {}", secs(def.timeout))),
            ),
        },
    };
    result(def, status, observed, detail, start.elapsed())
}

type Eval = (CheckStatus, Value, Option<String>);

async fn evaluate(kind: &CheckKind, timeout: Duration, env: &CheckEnv) -> Eval {
    match kind {
        CheckKind::Http {
            url,
            status,
            body_matches,
            max_latency_ms,
        } => http(url, status, body_matches.as_ref(), *max_latency_ms, timeout).await,
        CheckKind::Tcp { host, port } => tcp(host, *port).await,
        CheckKind::Systemd { unit, state } => systemd(unit, state, timeout, &env.path_env).await,
        CheckKind::Mount {
            path,
            options,
            fstype,
        } => mount(path, options, fstype.as_deref()).await,
        CheckKind::File {
            path,
            exists,
            max_age_secs,
            contains,
        } => file(path, *exists, *max_age_secs, contains.as_ref()).await,
        CheckKind::Container { .. } => super::container::evaluate(kind, env).await,
        CheckKind::Command { .. } => (
            CheckStatus::Error,
            Value::Null,
            Some("internal: command checks are run by `command`".into()),
        ),
    }
}

fn result(
    def: &CheckDef,
    status: CheckStatus,
    observed: Value,
    detail: Option<String>,
    elapsed: Duration,
) -> CheckResult {
    CheckResult {
        name: def.name.clone(),
        description: def.description.clone(),
        kind: def.kind.name().to_string(),
        status,
        observed,
        expected: expected(&def.kind),
        detail,
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
    }
}

/// The expectation in words, so a failure can be read without the definition at hand.
pub fn expected(kind: &CheckKind) -> String {
    let re = |p: &CheckRegex| format!("/{}/", p.as_str());
    match kind {
        CheckKind::Command {
            exit_code,
            stdout_matches,
            stdout_not_matches,
            json_field,
            ..
        } => {
            let mut parts = vec![format!("exit {exit_code}")];
            if let Some(p) = stdout_matches {
                parts.push(format!("stdout matching {}", re(p)));
            }
            if let Some(p) = stdout_not_matches {
                parts.push(format!("stdout not matching {}", re(p)));
            }
            if let Some(j) = json_field {
                parts.push(format!("`{}` {}", j.field, describe_compare(&j.compare)));
            }
            parts.join(", ")
        }
        CheckKind::Http {
            status,
            body_matches,
            max_latency_ms,
            ..
        } => {
            let codes: Vec<String> = status.iter().map(|s| s.to_string()).collect();
            let mut parts = vec![format!("status {}", codes.join(" or "))];
            if let Some(p) = body_matches {
                parts.push(format!("body matching {}", re(p)));
            }
            if let Some(ms) = max_latency_ms {
                parts.push(format!("within {ms} ms"));
            }
            parts.join(", ")
        }
        CheckKind::Tcp { host, port } => format!("{host}:{port} accepts a connection"),
        CheckKind::Container { .. } => super::container::expected(kind),
        CheckKind::Systemd { unit, state } => format!("{unit} is {state}"),
        CheckKind::Mount {
            path,
            options,
            fstype,
        } => {
            let mut s = format!("{} is a mount point", path.display());
            if let Some(t) = fstype {
                s.push_str(&format!(" of type {t}"));
            }
            if !options.is_empty() {
                s.push_str(&format!(" with options {}", options.join(",")));
            }
            s
        }
        CheckKind::File {
            path,
            exists,
            max_age_secs,
            contains,
        } => {
            if !exists {
                return format!("{} does not exist", path.display());
            }
            let mut parts = vec![format!("{} exists", path.display())];
            if let Some(a) = max_age_secs {
                parts.push(format!("modified within {a} s"));
            }
            if let Some(p) = contains {
                parts.push(format!("contains {}", re(p)));
            }
            parts.join(", ")
        }
    }
}

fn describe_compare(c: &JsonCompare) -> String {
    match c {
        JsonCompare::Equals(v) => format!("equals {v}"),
        JsonCompare::LessThan(n) => format!("< {n}"),
        JsonCompare::GreaterThan(n) => format!("> {n}"),
        JsonCompare::In(v) => format!("in {}", Value::Array(v.clone())),
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn clip(s: &str) -> String {
    if s.len() <= MAX_OBSERVED {
        return s.to_string();
    }
    let mut end = MAX_OBSERVED;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes]", &s[..end], s.len())
}

// ---------------------------------------------------------------------------------------------
// command

async fn command(def: &CheckDef, env: &CheckEnv) -> Eval {
    let CheckKind::Command {
        argv,
        exit_code,
        stdout_matches,
        stdout_not_matches,
        json_field,
        unavailable_when,
    } = &def.kind
    else {
        return (
            CheckStatus::Error,
            Value::Null,
            Some("not a command".into()),
        );
    };
    let out = match exec::run(&exec::Command {
        argv,
        path_env: &env.path_env,
        cwd: env.cwd.as_deref(),
        timeout: def.timeout,
        stdout_cap: MAX_STDOUT,
        stderr_tail: MAX_STDERR,
    })
    .await
    {
        Ok(out) => out,
        Err(ExecError::NotFound { program, .. }) => {
            return (
                CheckStatus::Unavailable,
                Value::Null,
                Some(format!("`{program}` not found on PATH")),
            );
        }
        Err(e) => return (CheckStatus::Error, Value::Null, Some(e.to_string())),
    };
    if out.timed_out() {
        return (
            CheckStatus::Fail,
            Value::Null,
            Some(out.describe(def.timeout)),
        );
    }
    let (code, signal) = (out.exit_code(), out.signal());
    let mut observed = observed(&out);
    let exec::Output { stdout, stderr, .. } = out;
    if code != Some(*exit_code) {
        if let Some(p) = unavailable_when {
            let both = format!("{stderr}\n{stdout}");
            if p.is_match(&both) {
                return (
                    CheckStatus::Unavailable,
                    observed,
                    Some(format!(
                        "output matches /{}/: not available here",
                        p.as_str()
                    )),
                );
            }
        }
        let got = match (code, signal) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            (None, None) => "no exit status".to_string(),
        };
        return (
            CheckStatus::Fail,
            observed,
            Some(format!("{got}, expected exit {exit_code}")),
        );
    }
    if let Some(p) = stdout_matches
        && !p.is_match(&stdout)
    {
        return (
            CheckStatus::Fail,
            observed,
            Some(format!("stdout does not match /{}/", p.as_str())),
        );
    }
    if let Some(p) = stdout_not_matches
        && let Some(m) = p.0.find(&stdout)
    {
        let line = stdout[..m.start()].matches('\n').count() + 1;
        let text = stdout.lines().nth(line - 1).unwrap_or_default();
        return (
            CheckStatus::Fail,
            observed,
            Some(format!(
                "stdout matches /{}/ at line {line}: {}",
                p.as_str(),
                clip(text.trim())
            )),
        );
    }
    if let Some(j) = json_field {
        let (ok, value, detail) = json_check(&stdout, j);
        observed["json_field"] = value;
        let status = if ok {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        };
        return (status, observed, detail);
    }
    (CheckStatus::Pass, observed, None)
}

/// What a finished command shows: exit code, signal, stdout and stderr (clipped).
fn observed(out: &exec::Output) -> Value {
    let mut observed = json!({
        "exit_code": out.exit_code(),
        "stdout": clip(&out.stdout),
    });
    if let Some(sig) = out.signal() {
        observed["signal"] = json!(sig);
    }
    if !out.stderr.trim().is_empty() {
        observed["stderr"] = json!(clip(out.stderr.trim()));
    }
    if out.stdout_truncated {
        observed["stdout_truncated"] = json!(true);
    }
    observed
}

/// `(passed, observed value, detail)`.
fn json_check(stdout: &str, j: &JsonExpect) -> (bool, Value, Option<String>) {
    let doc: Value = match serde_json::from_str(stdout.trim()) {
        Ok(v) => v,
        Err(e) => return (false, Value::Null, Some(format!("stdout is not JSON: {e}"))),
    };
    let Some(found) = lookup(&doc, &j.field) else {
        return (
            false,
            Value::Null,
            Some(format!("`{}` is not in the JSON output", j.field)),
        );
    };
    let ok = match &j.compare {
        JsonCompare::Equals(want) => json_eq(found, want),
        JsonCompare::In(list) => list.iter().any(|w| json_eq(found, w)),
        JsonCompare::LessThan(n) | JsonCompare::GreaterThan(n) => {
            let Some(x) = as_number(found) else {
                return (
                    false,
                    found.clone(),
                    Some(format!("`{}` is {found}, not a number", j.field)),
                );
            };
            if matches!(j.compare, JsonCompare::LessThan(_)) {
                x < *n
            } else {
                x > *n
            }
        }
    };
    let detail = (!ok).then(|| {
        format!(
            "`{}` is {found}, expected {}",
            j.field,
            describe_compare(&j.compare)
        )
    });
    (ok, found.clone(), detail)
}

/// A JSON pointer (`/a/b/0`) or a dotted path (`a.b.0`, array elements by index).
pub fn lookup<'a>(doc: &'a Value, field: &str) -> Option<&'a Value> {
    if field.starts_with('/') {
        return doc.pointer(field);
    }
    field.split('.').try_fold(doc, |v, seg| match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Numbers compare by value, so `equals = 3` matches `3.0` in the output.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (as_number(a), as_number(b)) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        // Many tools print numbers as strings ("42"); comparing them numerically is the intent.
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// http

async fn http(
    url: &str,
    want: &[u16],
    body_matches: Option<&CheckRegex>,
    max_latency_ms: Option<u64>,
    timeout: Duration,
) -> Eval {
    // No redirects (the status is the URL's own) and no proxy from the environment (the check
    // observes the target, not whatever proxy steward happens to inherit).
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return (
                CheckStatus::Error,
                Value::Null,
                Some(format!("cannot build an HTTP client: {e}")),
            );
        }
    };
    let start = Instant::now();
    let resp = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => {
            return (
                CheckStatus::Fail,
                Value::Null,
                Some(format!("request failed: {}", error_chain(&e))),
            );
        }
    };
    let code = resp.status().as_u16();
    let mut body = Vec::new();
    let mut resp = resp;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(e) => {
                return (
                    CheckStatus::Fail,
                    json!({"status": code}),
                    Some(format!("reading the body failed: {}", error_chain(&e))),
                );
            }
        }
    }
    let latency = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let body = String::from_utf8_lossy(&body).into_owned();
    let observed = json!({"status": code, "latency_ms": latency, "body": clip(&body)});
    if !want.contains(&code) {
        return (
            CheckStatus::Fail,
            observed,
            Some(format!("status {code}, expected {want:?}")),
        );
    }
    if let Some(p) = body_matches
        && !p.is_match(&body)
    {
        return (
            CheckStatus::Fail,
            observed,
            Some(format!("body does not match /{}/", p.as_str())),
        );
    }
    if let Some(max) = max_latency_ms
        && latency > max
    {
        return (
            CheckStatus::Fail,
            observed,
            Some(format!("took {latency} ms, more than {max} ms")),
        );
    }
    (CheckStatus::Pass, observed, None)
}

// ---------------------------------------------------------------------------------------------
// tcp

async fn tcp(host: &str, port: u16) -> Eval {
    match tokio::net::TcpStream::connect((host, port)).await {
        Ok(s) => {
            let peer = s.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            (
                CheckStatus::Pass,
                json!({"connected": true, "peer": peer}),
                None,
            )
        }
        Err(e) => (
            CheckStatus::Fail,
            json!({"connected": false}),
            Some(format!("cannot connect to {host}:{port}: {e}")),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// systemd

/// Output of systemctl that means "no systemd here" rather than "the unit is broken".
const NO_SYSTEMD: [&str; 3] = [
    "not been booted with systemd",
    "Failed to connect to bus",
    "Failed to connect to system scope bus",
];

async fn systemd(unit: &str, want: &str, timeout: Duration, path_env: &str) -> Eval {
    let argv: Vec<String> = [
        "systemctl",
        "show",
        unit,
        "--property=ActiveState,SubState,Result,LoadState",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = match exec::run(&exec::Command {
        argv: &argv,
        path_env,
        cwd: None,
        timeout,
        stdout_cap: MAX_STDOUT,
        stderr_tail: MAX_STDERR,
    })
    .await
    {
        Ok(out) => out,
        Err(ExecError::NotFound { .. }) => {
            return (
                CheckStatus::Unavailable,
                Value::Null,
                Some("systemctl not found".into()),
            );
        }
        Err(e) => return (CheckStatus::Error, Value::Null, Some(e.to_string())),
    };
    if out.timed_out() {
        return (
            CheckStatus::Fail,
            Value::Null,
            Some(format!("systemctl timed out after {}", secs(timeout))),
        );
    }
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    if out.exit_code() != Some(0) {
        let msg = stderr.trim().to_string();
        let absent = NO_SYSTEMD.iter().any(|s| msg.contains(s))
            || !Path::new("/run/systemd/system").exists();
        let status = if absent {
            CheckStatus::Unavailable
        } else {
            CheckStatus::Error
        };
        return (
            status,
            Value::Null,
            Some(format!("systemctl: {}", clip(&msg))),
        );
    }
    let props = parse_systemctl_show(stdout);
    let get = |k: &str| props.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let observed = json!({
        "ActiveState": get("ActiveState"),
        "SubState": get("SubState"),
        "Result": get("Result"),
        "LoadState": get("LoadState"),
    });
    if get("LoadState") == Some("not-found") {
        return (
            CheckStatus::Fail,
            observed,
            Some(format!("unit {unit} not found")),
        );
    }
    let active = get("ActiveState").unwrap_or_default();
    let sub = get("SubState").unwrap_or_default();
    if active == want || sub == want {
        (CheckStatus::Pass, observed, None)
    } else {
        (
            CheckStatus::Fail,
            observed,
            Some(format!("{unit} is {active} ({sub}), expected {want}")),
        )
    }
}

/// `Key=value` lines; lines without `=` are ignored (systemctl prints none, but be lenient).
pub fn parse_systemctl_show(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// mount

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq)]
pub struct MountEntry {
    pub mount_point: String,
    pub options: Vec<String>,
    pub fstype: String,
    pub source: String,
    pub super_options: Vec<String>,
}

/// Parses mountinfo (see proc(5)): fields 5 and 6 are the mount point and its options; after the
/// `-` separator come fstype, source and superblock options. Octal escapes (`\040`) are decoded.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < 6 || fields.len() < sep + 3 {
            continue;
        }
        let split = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
        out.push(MountEntry {
            mount_point: unescape_octal(fields[4]),
            options: split(fields[5]),
            fstype: fields[sep + 1].to_string(),
            source: unescape_octal(fields[sep + 2]),
            super_options: fields.get(sep + 3).map(|s| split(s)).unwrap_or_default(),
        });
    }
    out
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn mount(path: &Path, want_opts: &[String], fstype: Option<&str>) -> Eval {
    let text = match tokio::fs::read_to_string("/proc/self/mountinfo").await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (
                CheckStatus::Unavailable,
                Value::Null,
                Some("/proc/self/mountinfo does not exist (no procfs)".into()),
            );
        }
        Err(e) => {
            return (
                CheckStatus::Error,
                Value::Null,
                Some(format!("cannot read /proc/self/mountinfo: {e}")),
            );
        }
    };
    // Compared literally (not canonicalised): `/proc/self` is a symlink into a mount, and must
    // not count as one. Trailing slashes are ignored.
    let want = path.to_string_lossy();
    let want = match want.trim_end_matches('/') {
        "" => "/",
        p => p,
    };
    // The last entry wins: a later mount on the same point hides the earlier ones.
    let Some(entry) = parse_mountinfo(&text)
        .into_iter()
        .rev()
        .find(|m| m.mount_point == want)
    else {
        return (
            CheckStatus::Fail,
            json!({"mounted": false}),
            Some(format!("{want} is not a mount point")),
        );
    };
    let observed = json!({
        "mounted": true,
        "fstype": entry.fstype,
        "source": entry.source,
        "options": entry.options.join(","),
        "super_options": entry.super_options.join(","),
    });
    if let Some(t) = fstype
        && entry.fstype != t
    {
        return (
            CheckStatus::Fail,
            observed,
            Some(format!("{want} is {}, expected {t}", entry.fstype)),
        );
    }
    let missing: Vec<&str> = want_opts
        .iter()
        .filter(|o| !entry.options.contains(o) && !entry.super_options.contains(o))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return (
            CheckStatus::Fail,
            observed,
            Some(format!("{want} lacks option(s) {}", missing.join(","))),
        );
    }
    (CheckStatus::Pass, observed, None)
}

// ---------------------------------------------------------------------------------------------
// file

async fn file(
    path: &Path,
    exists: bool,
    max_age_secs: Option<u64>,
    contains: Option<&CheckRegex>,
) -> Eval {
    let meta = match tokio::fs::metadata(path).await {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return (
                CheckStatus::Error,
                Value::Null,
                Some(format!("cannot stat {}: {e}", path.display())),
            );
        }
    };
    let Some(meta) = meta else {
        return if exists {
            (
                CheckStatus::Fail,
                json!({"exists": false}),
                Some(format!("{} does not exist", path.display())),
            )
        } else {
            (CheckStatus::Pass, json!({"exists": false}), None)
        };
    };
    if !exists {
        return (
            CheckStatus::Fail,
            json!({"exists": true}),
            Some(format!("{} exists", path.display())),
        );
    }
    let mut observed = json!({"exists": true, "size": meta.len()});
    if let Some(max) = max_age_secs {
        let age = match meta.modified() {
            // A future mtime (clock skew) counts as age 0, not as an error.
            Ok(m) => SystemTime::now()
                .duration_since(m)
                .unwrap_or(Duration::ZERO)
                .as_secs(),
            Err(e) => {
                return (
                    CheckStatus::Error,
                    observed,
                    Some(format!("cannot read the mtime of {}: {e}", path.display())),
                );
            }
        };
        observed["age_secs"] = json!(age);
        if age > max {
            return (
                CheckStatus::Fail,
                observed,
                Some(format!(
                    "{} was modified {age} s ago, more than {max} s",
                    path.display()
                )),
            );
        }
    }
    if let Some(p) = contains {
        let text = match read_head(path).await {
            Ok(t) => t,
            Err(e) => {
                return (
                    CheckStatus::Error,
                    observed,
                    Some(format!("cannot read {}: {e}", path.display())),
                );
            }
        };
        if !p.is_match(&text) {
            return (
                CheckStatus::Fail,
                observed,
                Some(format!(
                    "{} does not contain /{}/",
                    path.display(),
                    p.as_str()
                )),
            );
        }
    }
    (CheckStatus::Pass, observed, None)
}

async fn read_head(path: &Path) -> std::io::Result<String> {
    let f = tokio::fs::File::open(path).await?;
    let mut buf = Vec::new();
    f.take(MAX_FILE).read_to_end(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
