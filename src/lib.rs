//! steward: triggers in, scoped and recorded Claude Code runs out. The model proposes; steward
//! decides.

pub mod agent;
pub mod bundled;
pub mod config;
pub mod frontmatter;
pub mod goal;
pub mod knowledge;
pub mod probe;
pub mod redact;
pub mod scripted;
pub mod signal;
