//! Loading what a run needs before anything runs: the definitions, the redactor, where checks
//! run, and the request checked against its goal (a typo leaves no record behind).

use crate::base::redact::Redactor;
use crate::config::Config;
use crate::defs::check::{CheckEnv, Phase};
use crate::defs::goal::{Goal, GoalError};

use super::{RunError, RunRequest};

pub use crate::defs::definitions::Definitions;

/// Checks run where the agent works, with the PATH claude gets.
pub fn check_env(cfg: &Config) -> CheckEnv {
    CheckEnv {
        path_env: cfg.claude.path.clone(),
        cwd: Some(cfg.workspace.clone()),
        docker_host: cfg.docker.socket(),
    }
}

pub fn redactor(cfg: &Config) -> Redactor {
    Redactor::new(cfg.known_secrets())
}

pub(super) fn check_request(defs: &Definitions, req: &RunRequest) -> Result<Goal, RunError> {
    let goal = defs.goal(&req.goal)?;
    for var in &goal.required_vars {
        if !req.vars.contains_key(var) {
            return Err(GoalError::MissingVar {
                goal: goal.name.clone(),
                var: var.clone(),
            }
            .into());
        }
    }
    // Unknown check names are a definition error: found before anything runs.
    for phase in Phase::ALL {
        defs.checks.for_phase(&goal.checks, phase)?;
    }
    Ok(goal)
}
