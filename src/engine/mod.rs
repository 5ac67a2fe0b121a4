//! One run, start to record: the agent runner, the boundary (settings, hook, audit),
//! approvals, the judge, effectiveness memory, the run itself and its history.

pub mod agent;
pub mod approval;
pub mod approval_prompt;
pub mod boundary;
pub mod catalog;
pub mod change;
pub mod context;
pub mod incident;
pub mod judge;
pub mod knowledge;
pub mod liveness;
pub mod memory;
pub mod prompt;
pub mod prompt_tool;
pub mod proposal_checks;
pub mod recover;
pub mod report;
pub mod run;
pub mod run_config;
pub mod run_index;
pub mod tools;
