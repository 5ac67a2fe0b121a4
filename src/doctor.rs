//! `steward doctor`: is this installation able to run, and does the boundary really hold with the
//! installed claude?

use serde::Serialize;

use crate::config::Loaded;

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub ok: bool,
    pub checks: Vec<Check>,
}

pub async fn run(_loaded: &Loaded) -> DoctorReport {
    DoctorReport {
        ok: false,
        checks: Vec::new(),
    }
}
