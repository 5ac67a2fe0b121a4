//! The `command` profile: the goal's own `apply` and `rollback` argv. `apply` runs in the
//! change's tree; `rollback` in a checkout of the base commit (the caller gives the directory).

use std::path::Path;

use crate::defs::change::Profile;

use super::super::record::{ChangeRecord, Step};
use super::{ProfileEnv, ProfileError, run_step};

pub async fn apply(
    env: &ProfileEnv<'_>,
    rec: &ChangeRecord,
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    let argv = argv(rec.apply.as_deref(), "apply")?;
    run_step(env, "apply", argv, dir, steps).await.map(|_| ())
}

pub async fn rollback(
    env: &ProfileEnv<'_>,
    rec: &ChangeRecord,
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    let argv = argv(rec.rollback.as_deref(), "roll back")?;
    run_step(env, "rollback", argv, dir, steps)
        .await
        .map(|_| ())
}

fn argv<'a>(argv: Option<&'a [String]>, what: &'static str) -> Result<&'a [String], ProfileError> {
    argv.filter(|a| !a.is_empty())
        .ok_or_else(|| ProfileError::Unsupported {
            profile: Profile::Command,
            what,
            why: "the change record has no argv for it".to_string(),
        })
}
