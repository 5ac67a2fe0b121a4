//! A run's diff-centric context: the host snapshot of `steward report` taken for every run and
//! compared with the snapshot of the subject's last run ([`host`]), what that last run saw
//! ([`last_run`], one bounded file per subject under `STATE/context/`), which probes the prompt
//! shows in full and which in one line ([`summarise`]), and the fenced texts and the run's
//! record of what was summarised ([`text`]).

pub mod elapsed;
pub mod host;
pub mod last_run;
pub mod summarise;
pub mod text;

pub use host::{Compared, HostContext};
pub use summarise::{Decision, Shown};
