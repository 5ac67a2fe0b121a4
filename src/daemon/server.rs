//! `steward serve`: the daemon. One process holds the HTTP listener (Alertmanager and generic
//! webhooks, health, metrics), a local socket for triggers to hand signals over, the router and
//! the one queue worker. axum stays in this folder: the services below it know nothing of HTTP.
//!
//! One job per file: [`lifecycle`] opens, starts and stops the daemon ([`Daemon::start`] serves
//! on a listener the caller bound, until a shutdown future resolves); `routing` is the routing
//! thread, `handlers` and `payload` the HTTP side, `worker` and `scheduler` the two loops,
//! `shared` what they share, `auth`, `conn`, `health`, `metrics` and `upkeep` the rest.

use std::path::PathBuf;

use crate::base::ledger::LedgerError;
use crate::config::{ConfigArgs, ConfigError};
use crate::daemon::queue::QueueError;
use crate::daemon::router::RouterError;
use crate::defs::schedule::ScheduleError;

mod auth;
mod conn;
mod docker;
mod drift_pass;
mod handlers;
mod health;
mod lifecycle;
mod metrics;
mod notify_loop;
mod payload;
mod routing;
mod scheduler;
mod shared;
mod stopping;
mod ui;
mod upkeep;
mod worker;

pub use lifecycle::{Daemon, serve};
pub use payload::{alertmanager_signals, generic_signal};
pub use stopping::Stop;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Conn(#[from] conn::ConnError),
    #[error("`{0}` is not a listen address (e.g. 127.0.0.1:8787)")]
    BadListen(String),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("webhook token file {path}: {message}")]
    Token { path: PathBuf, message: String },
    #[error("UI token file {path}: {message}")]
    UiToken { path: PathBuf, message: String },
    #[error("state_dir changed from {from} to {to}: that needs a restart, not a reload")]
    StateDirChanged { from: PathBuf, to: PathBuf },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    DaemonLock(#[from] crate::daemon::daemon_lock::DaemonLockError),
}

/// What the command line gives the daemon.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config_args: ConfigArgs,
    pub listen: Option<String>,
    pub webhook_token_file: Option<PathBuf>,
}
