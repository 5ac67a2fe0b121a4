//! Definitions steward loads: bundled files, front matter, goals, the tool policy, probes,
//! checks, knowledge notes, cron schedules.

pub mod bundled;
pub mod change;
pub mod check;
pub mod definitions;
pub mod frontmatter;
pub mod goal;
pub mod knowledge;
pub mod policy;
pub mod probe;
pub mod schedule;
pub mod service;
