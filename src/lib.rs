//! steward: triggers in, scoped and recorded Claude Code runs out. The model proposes; steward
//! decides.

pub mod agent;
pub mod approval;
pub mod boundary;
pub mod bundled;
pub mod cancel;
pub mod check;
pub mod ci;
pub mod cli;
pub mod config;
pub mod definitions;
pub mod doctor;
pub mod exec;
pub mod frontmatter;
pub mod goal;
pub mod inline;
pub mod knowledge;
pub mod ledger;
pub mod liveness;
pub mod mcp;
pub mod outcome;
pub mod policy;
pub mod probe;
pub mod procfs;
pub mod queue;
pub mod recover;
pub mod redact;
pub mod router;
pub mod run;
pub mod run_index;
pub mod schedule;
pub mod scripted;
pub mod server;
pub mod signal;
pub mod spawn;
pub mod trigger;
