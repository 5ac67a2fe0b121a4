//! `steward.toml`: where it is found, how overrides apply, and what it may contain.
//!
//! Lookup order: `--config FILE`, `$STEWARD_CONFIG`, `./steward.toml`, `/etc/steward/steward.toml`,
//! else built-in defaults with the current directory as the workspace. Unknown keys and bad values
//! are rejected with the file, line and key.

pub mod change;
pub mod docker;
pub mod maintenance;
pub mod notify;
pub mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use change::{ChangeConfig, Profile};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("override `-c {raw}`: {message}")]
    Override { raw: String, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("cannot determine the current directory: {0}")]
    Cwd(std::io::Error),
    #[error("cannot read credential file {path} (config key `{key}`): {source}")]
    Credential {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The effective configuration. Every field has a default so that no file is needed at all.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The infrastructure repository the agent works in.
    pub workspace: PathBuf,
    /// Where runs, events, actions and the queue live.
    pub state_dir: PathBuf,
    /// Operator directories; each adds to (and by name overrides) the bundled defaults.
    pub goals_dir: Option<PathBuf>,
    pub context_dir: Option<PathBuf>,
    pub knowledge_dir: Option<PathBuf>,
    /// Use only the operator directories, not the bundled files.
    pub no_bundled: bool,
    pub claude: ClaudeConfig,
    pub limits: Limits,
    pub redact: RedactConfig,
    /// An operator routing table that replaces the bundled `triggers/routes.toml` wholesale
    /// (first match wins, so merging two tables would make the order ambiguous).
    pub routes_file: Option<PathBuf>,
    pub router: RouterConfig,
    pub serve: ServeConfig,
    pub retention: RetentionConfig,
    pub change: ChangeConfig,
    /// `[[notify]]`: the notification targets (see `config/notify.rs`).
    pub notify: Vec<notify::NotifyTarget>,
    pub report: report::ReportConfig,
    pub docker: docker::DockerConfig,
}

/// `[retention]`: how long the record of runs is kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// The daemon removes runs (and event log days) older than this many days, at start and
    /// once a day, as `steward runs prune --older-than Nd` would. 0, the default, keeps
    /// everything: deleting records is the operator's call.
    pub runs_days: u32,
}

/// `[serve]`: the daemon (`steward serve`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address the HTTP listener binds (`--listen` overrides it).
    pub listen: String,
    /// File holding the webhook token shared by both webhooks (`--webhook-token-file` overrides
    /// it; else `$STEWARD_WEBHOOK_TOKEN_FILE`, else the systemd credential `webhook-token`): the
    /// fallback for an endpoint without a token of its own.
    pub webhook_token_file: Option<PathBuf>,
    /// `POST /hooks/alertmanager`'s own token (else the credential `webhook-token-alertmanager`,
    /// else the shared one): only this one authorises that endpoint when set.
    pub alertmanager_token_file: Option<PathBuf>,
    /// `POST /hooks/generic`'s own token (else the credential `webhook-token-generic`, else the
    /// shared one).
    pub generic_token_file: Option<PathBuf>,
    /// A connection must send a request's headers within this many seconds of being accepted
    /// or of its previous answer (so it is also the idle timeout of a kept-alive connection).
    pub header_read_timeout_secs: u64,
    /// A webhook's body must arrive within this many seconds of its headers (else 408).
    pub body_timeout_secs: u64,
    /// Open connections to the HTTP listener at most; lowered at start to what the open-file
    /// limit leaves after steward's own reserve and `daemon.sock`'s connections.
    pub max_connections: usize,
    /// Largest request body a webhook may send.
    pub max_body_bytes: usize,
    /// On SIGTERM, how long the current run may take to finish before it is cancelled.
    pub grace_secs: u64,
    /// A job queued or running longer than this makes the queue stuck (`daemon_degraded`
    /// notifications): a run that does not end, or a backlog hours long.
    pub stuck_secs: u64,
    /// How often the worker looks at the queue when nothing wakes it.
    pub poll_secs: u64,
    /// The worker claims nothing while set: signals are still routed and queued (maintenance of
    /// the daemon itself; `SIGHUP` after changing it).
    pub paused: bool,
    /// Whether the daemon fires goals on their `schedule` (cron, UTC). Off where systemd timers
    /// (or another scheduler) already trigger them, so that no goal runs twice.
    pub scheduler: bool,
    /// Each scheduled fire first waits a random 0..=N seconds (systemd's `RandomizedDelaySec=`),
    /// so hosts that share a schedule do not all call the model at the same moment.
    pub scheduler_random_delay_secs: u64,
    /// The web page's login token (else `$STEWARD_UI_TOKEN_FILE`, else the systemd credential
    /// `ui-token`): the page is served only when one is configured.
    pub ui_token_file: Option<PathBuf>,
    /// The address operators reach the daemon at (e.g. `https://steward.example.org`): the
    /// page's links and its origin check; `https` marks the session cookie `Secure`.
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaudeConfig {
    /// Path to the claude binary; else `$STEWARD_CLAUDE_BIN`, else `claude` on PATH.
    pub bin: Option<PathBuf>,
    /// Pinned model id passed as `--model`; a goal may override it.
    pub model: String,
    /// `CLAUDE_CODE_MAX_RETRIES` for claude; the CLI default of 10 turns an outage into minutes.
    pub max_retries: u8,
    /// Credential files; each wins over the same variable in steward's environment.
    pub api_key_file: Option<PathBuf>,
    pub oauth_token_file: Option<PathBuf>,
    pub base_url: Option<String>,
    /// PATH given to claude and its tools.
    pub path: String,
    /// Seconds between SIGINT and SIGKILL of the process group when a run is cancelled.
    pub kill_grace_secs: u64,
    /// Run claude in its own PID namespace (`unshare`) where the host allows it; false: never,
    /// only its process group.
    pub pid_namespace: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Default per-run budget for goals that name none.
    pub budget_usd: f64,
    pub max_turns: u32,
    pub timeout_secs: u64,
    pub probe_timeout_secs: u64,
    pub probe_max_bytes: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactConfig {
    /// Literal secret values that must never reach a prompt or a record.
    pub secrets: Vec<String>,
    /// Files whose (trimmed) contents are secret values.
    pub secret_files: Vec<PathBuf>,
}

/// `[router]`: what stands between a signal and a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterConfig {
    /// Spend (from the recorded `cost_usd` of today's runs, UTC) above which no run starts.
    pub daily_budget_usd: f64,
    /// Runs the router may start per rolling hour, over all sources.
    pub max_runs_per_hour: u32,
    /// Runs the router may start per rolling hour from one source (`alertmanager`, `timer`, …).
    pub max_runs_per_hour_per_source: u32,
    /// Quiet time per (goal, subject) after a run was enqueued; a route may override it.
    pub cooldown_secs: u64,
    /// Signals per subject within a short window that count as flapping.
    pub flapping_acute: FlapWindow,
    /// Signals per subject within a long window that count as flapping.
    pub flapping_chronic: FlapWindow,
    /// Windows in which no run starts (signals are still recorded).
    pub maintenance: Vec<MaintenanceWindow>,
    /// How long the queue worker waits for the host lock (a one-shot CLI run may hold it).
    pub lock_wait_secs: u64,
    /// The most subjects (and firing fingerprints) the router remembers per window: flapping
    /// failures, alerts firing, cooldowns, escalations. Past it the oldest are forgotten, so a
    /// storm of distinct subjects cannot grow `router.json` without bound.
    pub max_subjects: usize,
}

/// The highest flapping count: the router keeps that many failure times per subject.
pub const MAX_FLAP_COUNT: u32 = 100;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlapWindow {
    pub count: u32,
    pub window_secs: u64,
}

/// One maintenance window: either absolute (`start`..`end`, RFC 3339) or recurring every day
/// (`daily = "02:00-04:00"`, UTC, may wrap past midnight). `subjects` are anchored regexes; empty
/// means every subject.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceWindow {
    pub name: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub daily: Option<String>,
    pub subjects: Vec<String>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            daily_budget_usd: 5.0,
            max_runs_per_hour: 20,
            max_runs_per_hour_per_source: 10,
            cooldown_secs: 900,
            flapping_acute: FlapWindow {
                count: 3,
                window_secs: 600,
            },
            flapping_chronic: FlapWindow {
                count: 5,
                window_secs: 86400,
            },
            maintenance: Vec::new(),
            lock_wait_secs: 3600,
            max_subjects: 10_000,
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8787".to_string(),
            webhook_token_file: None,
            alertmanager_token_file: None,
            generic_token_file: None,
            header_read_timeout_secs: 10,
            body_timeout_secs: 30,
            max_connections: 512,
            max_body_bytes: 1024 * 1024,
            grace_secs: 60,
            stuck_secs: 3600,
            poll_secs: 5,
            paused: false,
            scheduler: true,
            scheduler_random_delay_secs: 0,
            ui_token_file: None,
            public_url: None,
        }
    }
}

impl Default for ClaudeConfig {
    fn default() -> Self {
        Self {
            bin: None,
            model: "claude-sonnet-5".to_string(),
            max_retries: 2,
            api_key_file: None,
            oauth_token_file: None,
            base_url: None,
            path: "/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                .to_string(),
            kill_grace_secs: 5,
            pid_namespace: true,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            budget_usd: 0.50,
            max_turns: 12,
            timeout_secs: 600,
            probe_timeout_secs: 10,
            probe_max_bytes: 16 * 1024,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            workspace: PathBuf::from("."),
            state_dir: default_state_dir(),
            goals_dir: None,
            context_dir: None,
            knowledge_dir: None,
            no_bundled: false,
            claude: ClaudeConfig::default(),
            limits: Limits::default(),
            redact: RedactConfig::default(),
            routes_file: None,
            router: RouterConfig::default(),
            serve: ServeConfig::default(),
            retention: RetentionConfig::default(),
            change: ChangeConfig::default(),
            notify: Vec::new(),
            report: report::ReportConfig::default(),
            docker: docker::DockerConfig::default(),
        }
    }
}

/// `$STATE_DIRECTORY` under systemd, `$XDG_STATE_HOME/steward`, else `~/.local/state/steward`.
fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("steward");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".local/state/steward");
    }
    PathBuf::from(".steward")
}

/// Where the effective config came from, for `steward config show`.
#[derive(Debug, Clone, Serialize)]
pub struct Loaded {
    pub config: Config,
    pub source: Option<PathBuf>,
}

/// What the command line says about config.
#[derive(Debug, Default, Clone)]
pub struct ConfigArgs {
    pub file: Option<PathBuf>,
    pub overrides: Vec<String>,
    pub state_dir: Option<PathBuf>,
}

impl Config {
    /// Finds, parses, overrides and validates the configuration.
    pub fn load(args: &ConfigArgs) -> Result<Loaded, ConfigError> {
        let source = locate(args.file.as_deref());
        let (mut table, text, label) = match &source {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let table: toml::Table = toml::from_str(&text)
                    .map_err(|e| parse_error(&path.display().to_string(), &text, &e))?;
                (table, text, path.display().to_string())
            }
            None => (toml::Table::new(), String::new(), "<defaults>".to_string()),
        };
        for raw in &args.overrides {
            apply_override(&mut table, raw)?;
        }
        // Re-serialising loses spans, so parse the file's own text first for line numbers, then
        // the merged table for the overrides.
        if !text.is_empty() {
            toml::from_str::<Config>(&text).map_err(|e| parse_error(&label, &text, &e))?;
        }
        let merged = toml::to_string(&table).map_err(|e| ConfigError::Invalid {
            key: "<overrides>".into(),
            message: e.to_string(),
        })?;
        let mut config: Config = toml::from_str(&merged).map_err(|e| {
            let p = parse_error("<-c overrides>", &merged, &e);
            match p {
                ConfigError::Parse { message, .. } => ConfigError::Override {
                    raw: args.overrides.join(" "),
                    message,
                },
                other => other,
            }
        })?;
        if let Some(dir) = &args.state_dir {
            config.state_dir = dir.clone();
        }
        config.resolve_paths(source.as_deref())?;
        config
            .validate()
            .map_err(|e| locate_invalid(e, &label, &text, &args.overrides))?;
        Ok(Loaded { config, source })
    }

    /// Makes relative paths absolute: against the config file's directory, else the cwd.
    fn resolve_paths(&mut self, source: Option<&Path>) -> Result<(), ConfigError> {
        let cwd = std::env::current_dir().map_err(ConfigError::Cwd)?;
        let base = source
            .and_then(|p| p.parent())
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| {
                if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    cwd.join(p)
                }
            })
            .unwrap_or_else(|| cwd.clone());
        let abs = |p: &Path| -> PathBuf {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        // The workspace defaults to where steward is started, not where the config lives.
        self.workspace = if self.workspace == Path::new(".") {
            cwd.clone()
        } else {
            abs(&self.workspace)
        };
        self.workspace = normalize(&self.workspace);
        self.state_dir = normalize(&if self.state_dir.is_absolute() {
            self.state_dir.clone()
        } else {
            cwd.join(&self.state_dir)
        });
        for dir in [
            &mut self.goals_dir,
            &mut self.context_dir,
            &mut self.knowledge_dir,
            &mut self.routes_file,
        ]
        .into_iter()
        .flatten()
        {
            *dir = normalize(&abs(dir));
        }
        for f in self
            .redact
            .secret_files
            .iter_mut()
            .chain(self.claude.api_key_file.iter_mut())
            .chain(self.claude.oauth_token_file.iter_mut())
            .chain(self.serve.webhook_token_file.iter_mut())
            .chain(self.serve.alertmanager_token_file.iter_mut())
            .chain(self.serve.generic_token_file.iter_mut())
            .chain(self.notify.iter_mut().flat_map(|n| {
                n.token_file
                    .iter_mut()
                    .chain(n.password_file.iter_mut())
                    .chain(n.url_file.iter_mut())
            }))
            .chain(self.serve.ui_token_file.iter_mut())
        {
            *f = normalize(&abs(f));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: &str| {
            Err(ConfigError::Invalid {
                key: key.to_string(),
                message: message.to_string(),
            })
        };
        if !(self.limits.budget_usd.is_finite() && self.limits.budget_usd > 0.0) {
            return bad("limits.budget_usd", "must be a positive number of USD");
        }
        if let Err(message) = report::parse_ignore(&self.report.ignore) {
            return bad("report.ignore", &message);
        }
        if self.limits.max_turns == 0 {
            return bad("limits.max_turns", "must be at least 1");
        }
        if self.limits.timeout_secs == 0 {
            return bad("limits.timeout_secs", "must be at least 1");
        }
        if self.limits.probe_timeout_secs == 0 {
            return bad("limits.probe_timeout_secs", "must be at least 1");
        }
        if self.limits.probe_max_bytes < 64 {
            return bad("limits.probe_max_bytes", "must be at least 64");
        }
        if self.claude.max_retries > 15 {
            return bad("claude.max_retries", "must be between 0 and 15");
        }
        if self.claude.model.trim().is_empty() {
            return bad("claude.model", "must name a model");
        }
        let r = &self.router;
        if !(r.daily_budget_usd.is_finite() && r.daily_budget_usd >= 0.0) {
            return bad(
                "router.daily_budget_usd",
                "must be zero or a positive number of USD",
            );
        }
        for (key, w) in [
            ("router.flapping_acute", r.flapping_acute),
            ("router.flapping_chronic", r.flapping_chronic),
        ] {
            if w.count < 2 || w.count > MAX_FLAP_COUNT || w.window_secs == 0 {
                return bad(
                    key,
                    "count must be between 2 and 100, and window_secs at least 1",
                );
            }
        }
        if r.max_subjects == 0 {
            return bad("router.max_subjects", "must be at least 1");
        }
        if self.serve.poll_secs == 0 {
            return bad("serve.poll_secs", "must be at least 1");
        }
        if self.serve.max_body_bytes < 1024 {
            return bad("serve.max_body_bytes", "must be at least 1024");
        }
        if !(1..=10).contains(&self.serve.header_read_timeout_secs) {
            return bad("serve.header_read_timeout_secs", "must be between 1 and 10");
        }
        if !(1..=600).contains(&self.serve.body_timeout_secs) {
            return bad("serve.body_timeout_secs", "must be between 1 and 600");
        }
        if self.serve.max_connections == 0 {
            return bad("serve.max_connections", "must be at least 1");
        }
        if self.serve.listen.parse::<std::net::SocketAddr>().is_err() {
            return bad("serve.listen", "must be an address such as 127.0.0.1:8787");
        }
        if let Err((key, message)) = self.change.check() {
            return bad(key, message);
        }
        if let Err((key, message)) = notify::check(&self.notify) {
            return bad(&key, &message);
        }
        if let Some(url) = &self.serve.public_url
            && let Err(message) = notify::check_public_url(url)
        {
            return bad("serve.public_url", &message);
        }
        // Compiling the windows here means a bad regex or time is a config error at start.
        maintenance::Maintenance::compile(&r.maintenance)?;
        if let Some(url) = &self.claude.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad("claude.base_url", "must be an http:// or https:// URL");
        }
        Ok(())
    }

    /// The PATH validators, executors and steward's git get in change sets: `[change] path`,
    /// else `claude.path`.
    pub fn change_path(&self) -> &str {
        if self.change.path.is_empty() {
            &self.claude.path
        } else {
            &self.change.path
        }
    }

    /// The claude binary: config key, `$STEWARD_CLAUDE_BIN`, else `claude` on PATH.
    pub fn claude_bin(&self) -> PathBuf {
        if let Some(bin) = &self.claude.bin {
            return bin.clone();
        }
        if let Some(bin) = std::env::var_os("STEWARD_CLAUDE_BIN").filter(|v| !v.is_empty()) {
            return PathBuf::from(bin);
        }
        PathBuf::from("claude")
    }

    /// Authentication for claude, from credential files first, then steward's own environment.
    /// Only these three variables are ever forwarded.
    pub fn claude_auth(&self) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut env = BTreeMap::new();
        let from_file =
            |key: &str, path: &Option<PathBuf>| -> Result<Option<String>, ConfigError> {
                match path {
                    Some(p) => std::fs::read_to_string(p)
                        .map(|s| Some(s.trim().to_string()))
                        .map_err(|source| ConfigError::Credential {
                            key: key.to_string(),
                            path: p.clone(),
                            source,
                        }),
                    None => Ok(None),
                }
            };
        let pick = |file: Option<String>, var: &str| {
            file.or_else(|| std::env::var(var).ok().filter(|v| !v.is_empty()))
        };
        if let Some(v) = pick(
            from_file("claude.api_key_file", &self.claude.api_key_file)?,
            "ANTHROPIC_API_KEY",
        ) {
            env.insert("ANTHROPIC_API_KEY".to_string(), v);
        }
        if let Some(v) = pick(
            from_file("claude.oauth_token_file", &self.claude.oauth_token_file)?,
            "CLAUDE_CODE_OAUTH_TOKEN",
        ) {
            env.insert("CLAUDE_CODE_OAUTH_TOKEN".to_string(), v);
        }
        if let Some(v) = pick(self.claude.base_url.clone(), "ANTHROPIC_BASE_URL") {
            env.insert("ANTHROPIC_BASE_URL".to_string(), v);
        }
        Ok(env)
    }

    /// Every literal secret steward knows of: config values, secret files and claude credentials.
    pub fn known_secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = self.redact.secrets.clone();
        for f in &self.redact.secret_files {
            if let Ok(s) = std::fs::read_to_string(f) {
                out.push(s.trim().to_string());
            }
        }
        if let Ok(auth) = self.claude_auth() {
            for (k, v) in auth {
                if k != "ANTHROPIC_BASE_URL" {
                    out.push(v);
                }
            }
        }
        out.retain(|s| s.len() >= 4);
        out
    }

    /// The web page's token file as configured: `serve.ui_token_file`, else
    /// `$STEWARD_UI_TOKEN_FILE` (the systemd credential `ui-token` is under
    /// `$CREDENTIALS_DIRECTORY`, which the policy's secrets cover already). The daemon reads it;
    /// every run's policy denies it to the agent.
    pub fn ui_token_file(&self) -> Option<PathBuf> {
        if let Some(p) = &self.serve.ui_token_file {
            return Some(p.clone());
        }
        std::env::var_os("STEWARD_UI_TOKEN_FILE")
            .filter(|v| !v.is_empty())
            .map(|v| normalize(&std::path::absolute(&v).unwrap_or_else(|_| PathBuf::from(&v))))
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.state_dir.join("runs")
    }

    pub fn events_dir(&self) -> PathBuf {
        self.state_dir.join("events")
    }
}

fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("STEWARD_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    ["steward.toml", "/etc/steward/steward.toml"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn parse_error(label: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let (line, column) = e
        .span()
        .map(|span| line_col(text, span.start))
        .unwrap_or((0, 0));
    ConfigError::Parse {
        path: label.to_string(),
        line,
        column,
        message: e.message().to_string(),
    }
}

/// A bad value found after parsing, placed at its key in the file (`FILE:LINE:COL`) when it came
/// from there; a value set or changed by `-c` keeps the key-only message.
fn locate_invalid(e: ConfigError, label: &str, text: &str, overrides: &[String]) -> ConfigError {
    let ConfigError::Invalid { key, message } = e else {
        return e;
    };
    // `a.b` and `a.b.c` or `a.b[0]` overlap: one sets (part of) the other.
    let within = |inner: &str, outer: &str| {
        inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with(['.', '[']))
    };
    let overridden = overrides.iter().any(|o| {
        o.split_once('=').is_some_and(|(k, _)| {
            let k = k.trim();
            within(&key, k) || within(k, &key)
        })
    });
    match key_position(text, &key).filter(|_| !overridden) {
        Some((line, column)) => ConfigError::Parse {
            path: label.to_string(),
            line,
            column,
            message: format!("`{key}` {message}"),
        },
        None => ConfigError::Invalid { key, message },
    }
}

/// Line and column of the value of a dotted key (`router.maintenance[0].daily`) in TOML text,
/// or of the deepest part of it that is there.
fn key_position(text: &str, key: &str) -> Option<(usize, usize)> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut value: Option<&toml::Spanned<DeValue<'_>>> = None;
    let mut table: &DeTable<'_> = doc.get_ref();
    for part in key.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some((_, v)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name) else {
            break;
        };
        value = Some(v);
        let v = match (v.get_ref(), index) {
            (DeValue::Array(a), Some(i)) => match a.get(i) {
                Some(item) => {
                    value = Some(item);
                    item
                }
                None => break,
            },
            _ => v,
        };
        match v.get_ref() {
            DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    value.map(|v| line_col(text, v.span().start))
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, column)
}

/// `a.b.c=value`: value parsed as TOML, else taken as a string.
fn apply_override(table: &mut toml::Table, raw: &str) -> Result<(), ConfigError> {
    let err = |message: &str| ConfigError::Override {
        raw: raw.to_string(),
        message: message.to_string(),
    };
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| err("expected key=value"))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(|p| p.trim().is_empty()) {
        return Err(err("empty key"));
    }
    let value = parse_value(value.trim());
    let parts: Vec<&str> = key.split('.').map(str::trim).collect();
    let mut cur = table;
    for part in &parts[..parts.len() - 1] {
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(err(&format!("`{part}` is not a table"))),
        };
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Lexical normalisation (`a/./b/../c` → `a/c`) without touching the file system.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, overrides: &[&str]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steward.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&ConfigArgs {
            file: Some(path),
            overrides: overrides.iter().map(|s| s.to_string()).collect(),
            state_dir: None,
        })
        .map(|l| l.config)
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = load_text("workspace = \"/srv\"\n\n[claude]\nmodle = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("steward.toml:4:"), "{err}");
        assert!(err.contains("modle"), "{err}");
    }

    #[test]
    fn a_bad_ignore_pattern_names_the_key_and_the_pattern() {
        let err = load_text("[report]\nignore = [\"port 22\"]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("report.ignore") && err.contains("unknown type `port`"),
            "{err}"
        );
        assert!(load_text("[report]\nignore = [\"socket tcp 127.0.0.1:*\"]\n", &[]).is_ok());
    }

    #[test]
    fn bad_value_type_names_line() {
        let err = load_text("[limits]\nmax_turns = \"many\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2:"), "{err}");
    }

    #[test]
    fn bad_value_range_names_key() {
        let err = load_text("[limits]\nbudget_usd = -1.0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.budget_usd"), "{err}");
        // At the value in the file, like every definition error.
        assert!(
            err.contains("steward.toml:2:14: `limits.budget_usd`"),
            "{err}"
        );
        let err = load_text(
            "[router]\nflapping_chronic = { count = 1, window_secs = 60 }\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("steward.toml:2:20:"), "{err}");
        let err = load_text("\n[[router.maintenance]]\ndaily = \"4am\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("steward.toml:2:1: `router.maintenance[0]`"),
            "{err}"
        );
        // A value from `-c` has no place in the file.
        let err = load_text("[limits]\nmax_turns = 3\n", &["limits.max_turns=0"])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("config key `limits.max_turns`"), "{err}");
    }

    #[test]
    fn overrides_apply_and_are_checked() {
        let c = load_text("", &["limits.max_turns=3", "claude.model=claude-x"]).unwrap();
        assert_eq!(c.limits.max_turns, 3);
        assert_eq!(c.claude.model, "claude-x");
        let err = load_text("", &["limits.nope=1"]).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
        assert!(load_text("", &["noequals"]).is_err());
    }

    #[test]
    fn relative_paths_resolve_against_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steward.toml");
        std::fs::write(&path, "workspace = \"infra\"\ngoals_dir = \"goals\"\n").unwrap();
        let c = Config::load(&ConfigArgs {
            file: Some(path),
            ..Default::default()
        })
        .unwrap()
        .config;
        assert_eq!(c.workspace, dir.path().join("infra"));
        assert_eq!(c.goals_dir.unwrap(), dir.path().join("goals"));
    }

    #[test]
    fn router_table_parses_with_defaults_and_rejects_unknown_keys() {
        let c = load_text("", &[]).unwrap();
        assert_eq!(c.router.daily_budget_usd, 5.0);
        assert_eq!(c.router.max_runs_per_hour, 20);
        assert_eq!(c.router.max_runs_per_hour_per_source, 10);
        assert_eq!(c.router.cooldown_secs, 900);
        assert_eq!(c.router.flapping_acute.count, 3);
        assert_eq!(c.router.flapping_chronic.window_secs, 86400);
        let c = load_text(
            "routes_file = \"routes.toml\"\n[router]\ndaily_budget_usd = 1.5\nflapping_acute = { count = 4, window_secs = 300 }\n\n[[router.maintenance]]\ndaily = \"02:00-04:00\"\nsubjects = [\"nomad.*\"]\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.router.daily_budget_usd, 1.5);
        assert_eq!(c.router.flapping_acute.count, 4);
        assert_eq!(c.router.maintenance.len(), 1);
        assert!(c.routes_file.unwrap().is_absolute());
        let err = load_text("[router]\nbudget = 3\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2:") && err.contains("budget"), "{err}");
        let err = load_text("[[router.maintenance]]\ndaily = \"4am\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("router.maintenance[0]"), "{err}");
        let err = load_text(
            "[router]\nflapping_chronic = { count = 1, window_secs = 60 }\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("router.flapping_chronic"), "{err}");
        assert_eq!(c.router.max_subjects, 10_000);
        for (text, key) in [
            ("[router]\nmax_subjects = 0\n", "router.max_subjects"),
            (
                "[router]\nflapping_acute = { count = 101, window_secs = 60 }\n",
                "router.flapping_acute",
            ),
        ] {
            let err = load_text(text, &[]).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        let c = load_text("[router]\nmax_subjects = 50\n", &[]).unwrap();
        assert_eq!(c.router.max_subjects, 50);
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
