//! The daemon: the queue, the router, inline routing for triggers without a daemon, the HTTP
//! server and its lifecycle.

pub mod daemon_lock;
pub mod docker_watch;
pub mod handoff;
pub mod inline;
pub mod notify;
pub mod queue;
pub mod retention;
pub mod router;
pub mod server;
pub mod signal_log;
