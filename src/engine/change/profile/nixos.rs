//! The `nixos` profile. NOT BUILT YET: every entry point refuses (a helper is building it).

use std::path::Path;

use crate::defs::change::Profile;

use super::super::record::{ChangeFile, ChangeRecord, RollbackTarget, Step};
use super::{ProfileEnv, ProfileError, StaticReport};

const PROFILE: Profile = Profile::Nixos;

fn not_yet(what: &'static str) -> ProfileError {
    ProfileError::Unsupported {
        profile: PROFILE,
        what,
        why: "not built yet".to_string(),
    }
}

pub async fn static_checks(
    _env: &ProfileEnv<'_>,
    _dir: &Path,
    _files: &[ChangeFile],
    _round: u8,
) -> StaticReport {
    StaticReport::default()
}

pub async fn apply(
    _env: &ProfileEnv<'_>,
    _rec: &ChangeRecord,
    _dir: &Path,
    _steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    Err(not_yet("apply"))
}

pub async fn rollback(
    _env: &ProfileEnv<'_>,
    _rec: &ChangeRecord,
    _dir: &Path,
    _steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    Err(not_yet("roll back"))
}

pub async fn finish(
    _env: &ProfileEnv<'_>,
    _rec: &ChangeRecord,
    _dir: &Path,
    _steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    Err(not_yet("finish"))
}

pub async fn rollback_target(_env: &ProfileEnv<'_>) -> Result<RollbackTarget, ProfileError> {
    Err(not_yet("find the rollback target"))
}
