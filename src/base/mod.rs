//! Foundations every layer may use: the signal record, outcomes and exit codes, redaction,
//! child processes, the state directory's files (ledger, appends, locks), cancellation.

pub mod append;
pub mod cancel;
pub mod docker;
pub mod exec;
pub mod flock;
pub mod ledger;
pub mod outcome;
pub mod procfs;
pub mod redact;
pub mod signal;
pub mod spawn;
