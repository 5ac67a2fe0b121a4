//! The static phase on a change: the goal's own `validate` argv, then the profile's bundled
//! validators, all in the changed tree. Every validator runs even after one fails, so the agent
//! (in a repair round) and the operator see every problem at once.

use std::path::Path;

use crate::defs::change::Profile;

use super::profile::{self, ProfileEnv, StaticReport};
use super::record::{ChangeFile, ValidatorSource};

/// Runs the static phase of one round in `dir`.
pub async fn run(
    env: &ProfileEnv<'_>,
    profile: Profile,
    dir: &Path,
    validate: &[Vec<String>],
    files: &[ChangeFile],
    round: u8,
) -> StaticReport {
    let mut validations = Vec::with_capacity(validate.len());
    for argv in validate {
        validations
            .push(profile::run_validator(env, argv, dir, ValidatorSource::Goal, round).await);
    }
    let mut report = profile::static_checks(env, profile, dir, files, round).await;
    validations.append(&mut report.validations);
    report.validations = validations;
    report
}

/// Every validator passed.
pub fn passed(report: &StaticReport) -> bool {
    report.validations.iter().all(|v| v.passed)
}
