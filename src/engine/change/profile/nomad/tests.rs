//! The `nomad` profile end to end on this machine, which has no Nomad: `nomad` is a LABELLED
//! STAND-IN, a shell script that records the argv steward passes and prints Nomad's documented
//! transcripts from `tests/data/nomad/` (see `SOURCES.md` there), keeping a job version in a
//! file so reverts can be followed. It shows the argv and that the output feeds the record;
//! it does not show that a cluster deploys anything.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use time::OffsetDateTime;

use super::*;
use crate::base::redact::Redactor;
use crate::config::ChangeConfig;
use crate::engine::change::record::{Artefacts, BlastRadius, CHANGE_FORMAT, ChangeState};

struct Cluster {
    _dir: tempfile::TempDir,
    root: PathBuf,
    log: PathBuf,
}

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/nomad");

impl Cluster {
    /// `plan` is the fixture `job plan` prints (exit `plan_exit`); the job is at `version`.
    fn new(plan: &str, plan_exit: i32, version: u64) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let log = root.join("argv.log");
        std::fs::create_dir(root.join("bin")).unwrap();
        std::fs::write(root.join("version"), version.to_string()).unwrap();
        std::fs::write(root.join("stopped"), "false").unwrap();
        let r = root.display();
        let script = format!(
            r#"#!/bin/sh
# STAND-IN for tests: records its argv, prints Nomad's documented output.
echo "nomad $*" >> {log}
mode=$(cat {r}/mode 2>/dev/null)
case "$2" in
  validate) echo "Job validation successful" ;;
  plan) [ "$mode" = plan-error ] && {{ echo "Error during plan: Unexpected response code: 500" >&2; exit 255; }}
        cat {DATA}/{plan}; exit {plan_exit} ;;
  run) case "$mode" in
         conflict) cat {DATA}/run-check-index-conflict.txt >&2; exit 1 ;;
         failed-exit-0) cat {DATA}/deployment-monitor-failed-auto-revert.txt ;;
         *) cat {DATA}/run-check-index-successful.txt ;;
       esac ;;
  inspect) [ "$mode" = unregistered ] && {{ echo "No job(s) with prefix or ID \"$4\" found" >&2; exit 1; }}
           sed -e "s/\"Version\": 0/\"Version\": $(cat {r}/version)/" \
               -e "s/\"Stop\": false/\"Stop\": $(cat {r}/stopped)/" {DATA}/inspect-example.json ;;
  revert) cat {DATA}/revert.txt
          [ "$mode" = revert-noop ] || echo $(( $(cat {r}/version) + 1 )) > {r}/version ;;
  stop) echo true > {r}/stopped ;;
esac
"#,
            log = log.display(),
        );
        let nomad = root.join("bin/nomad");
        std::fs::write(&nomad, script).unwrap();
        std::fs::set_permissions(&nomad, std::fs::Permissions::from_mode(0o755)).unwrap();
        Cluster {
            _dir: dir,
            root,
            log,
        }
    }

    fn mode(&self, mode: &str) {
        std::fs::write(self.root.join("mode"), mode).unwrap();
    }

    fn version(&self) -> u64 {
        std::fs::read_to_string(self.root.join("version"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn path_env(&self) -> String {
        format!("{}/bin:/usr/bin:/bin", self.root.display())
    }
}

fn cfg() -> ChangeConfig {
    ChangeConfig {
        validate_timeout_secs: 30,
        apply_timeout_secs: 30,
        env: BTreeMap::from([(
            "NOMAD_ADDR".to_string(),
            "http://127.0.0.1:4646".to_string(),
        )]),
        ..ChangeConfig::default()
    }
}

fn file(path: &str, status: &str) -> ChangeFile {
    ChangeFile {
        path: path.into(),
        status: status.into(),
        old_path: None,
        added: 1,
        removed: 1,
        binary: false,
    }
}

fn files() -> Vec<ChangeFile> {
    vec![
        file("jobs/web.nomad.hcl", "modified"),
        file("jobs/old.nomad", "deleted"),
        file("README.md", "modified"),
    ]
}

fn record(index: Option<u64>, versions: &[(&str, u64)], jobs: &[&str]) -> ChangeRecord {
    let now = OffsetDateTime::now_utc();
    let mut artefacts = Artefacts::default();
    if let Some(i) = index {
        artefacts
            .nomad_modify_index
            .insert("jobs/web.nomad.hcl".into(), i);
    }
    let mut blast_radius = BlastRadius::default();
    for job in jobs {
        blast_radius.nomad.insert(job.to_string(), BTreeMap::new());
    }
    ChangeRecord {
        format: CHANGE_FORMAT,
        id: "c-0123456789ab".into(),
        state: ChangeState::Applying,
        run: "r-1".into(),
        goal: "change".into(),
        subject: "intent".into(),
        intent: "bump redis".into(),
        workspace: "/ws".into(),
        workspace_branch: Some("main".into()),
        base: "a".repeat(40),
        branch: "steward/r-1".into(),
        head: "b".repeat(40),
        worktree: "/state/worktrees/r-1".into(),
        diff_sha256: "c".repeat(64),
        files: files(),
        profile: Profile::Nomad,
        edit: vec!["jobs/**".into()],
        validate: vec![],
        apply: None,
        rollback: None,
        validation: Vec::new(),
        repair_rounds: 0,
        artefacts,
        blast_radius,
        rollback_target: RollbackTarget::JobVersions {
            versions: versions.iter().map(|(j, v)| (j.to_string(), *v)).collect(),
        },
        post_checks: vec![],
        created: now,
        expires: now,
        reason: String::new(),
        steps: Vec::new(),
        reboot_needed: false,
        history: Vec::new(),
    }
}

fn whats(steps: &[Step]) -> Vec<&str> {
    steps.iter().map(|s| s.what.as_str()).collect()
}

macro_rules! env {
    ($cluster:expr, $cfg:ident, $redactor:ident, $path:ident, $env:ident) => {
        let $cfg = cfg();
        let $redactor = Redactor::new(vec![]);
        let $path = $cluster.path_env();
        let $env = ProfileEnv {
            cfg: &$cfg,
            path_env: &$path,
            redactor: &$redactor,
        };
    };
}

#[tokio::test]
async fn static_checks_validate_and_plan_each_job_file_and_keep_the_index() {
    let c = Cluster::new("plan-rolling-update.txt", 1, 4);
    env!(c, cfg, redactor, path, env);
    let dir = tempfile::tempdir().unwrap();
    let report = super::super::static_checks(&env, Profile::Nomad, dir.path(), &files(), 0).await;
    let v = &report.validations;
    assert_eq!(v.len(), 2, "{v:#?}");
    assert!(v[0].passed && v[1].passed, "exit 1 is a valid plan: {v:#?}");
    assert_eq!(v[1].exit_code, Some(1));
    assert_eq!(
        c.log(),
        [
            "nomad job validate -no-color ./jobs/web.nomad.hcl",
            "nomad job plan -no-color ./jobs/web.nomad.hcl"
        ]
    );
    assert_eq!(report.artefacts.nomad_modify_index["jobs/web.nomad.hcl"], 7);
    assert_eq!(
        report.blast_radius.nomad["example"],
        BTreeMap::from([("create/destroy update".to_string(), 3)])
    );
    assert!(report.blast_radius.notes[0].starts_with("jobs/old.nomad: deleted"));
}

#[tokio::test]
async fn a_plan_that_cannot_place_or_errors_fails_validation() {
    let c = Cluster::new("plan-placement-failure.txt", 1, 4);
    env!(c, cfg, redactor, path, env);
    let dir = tempfile::tempdir().unwrap();
    let report = static_checks(&env, dir.path(), &files(), 0).await;
    assert!(!report.validations[1].passed);
    assert!(
        report.validations[1]
            .error
            .as_deref()
            .unwrap()
            .contains("place")
    );
    c.mode("plan-error");
    let report = static_checks(&env, dir.path(), &files(), 0).await;
    assert!(!report.validations[1].passed);
    assert_eq!(report.validations[1].exit_code, Some(255));
    assert!(report.artefacts.is_empty());
}

#[tokio::test]
async fn the_rollback_target_is_each_existing_jobs_version() {
    let c = Cluster::new("plan-rolling-update.txt", 1, 4);
    env!(c, cfg, redactor, path, env);
    let dir = tempfile::tempdir().unwrap();
    let target = super::super::rollback_target(&env, Profile::Nomad, dir.path(), "a", &files())
        .await
        .unwrap();
    assert_eq!(
        target,
        RollbackTarget::JobVersions {
            versions: BTreeMap::from([("example".to_string(), 4)])
        }
    );
    assert_eq!(c.log()[1], "nomad job inspect -no-color example");
    // A new job (Job Modify Index 0) has no version to return to.
    let new = Cluster::new("plan-new-job.txt", 1, 0);
    env!(new, cfg2, redactor2, path2, env2);
    let target = rollback_target(&env2, dir.path(), &files()).await.unwrap();
    assert_eq!(
        target,
        RollbackTarget::JobVersions {
            versions: BTreeMap::new()
        }
    );
    assert_eq!(
        new.log().len(),
        1,
        "no inspect of a job that does not exist"
    );
}

#[tokio::test]
async fn apply_runs_with_the_planned_index_and_reads_the_deployment() {
    let c = Cluster::new("plan-rolling-update.txt", 1, 4);
    env!(c, cfg, redactor, path, env);
    let dir = tempfile::tempdir().unwrap();
    let mut steps = Vec::new();
    let rec = record(Some(7), &[("example", 4)], &["example"]);
    super::super::apply(&env, &rec, dir.path(), &mut steps)
        .await
        .unwrap();
    assert_eq!(whats(&steps), ["apply"]);
    assert_eq!(
        steps[0].argv,
        [
            "nomad",
            "job",
            "run",
            "-no-color",
            "-check-index",
            "7",
            "./jobs/web.nomad.hcl"
        ]
    );
    assert!(steps[0].ok && steps[0].output.contains("62eb607c"));
    assert_eq!(
        c.log(),
        ["nomad job run -no-color -check-index 7 ./jobs/web.nomad.hcl"]
    );
}

#[tokio::test]
async fn a_failed_or_conflicting_deployment_fails_apply() {
    let c = Cluster::new("plan-rolling-update.txt", 1, 4);
    env!(c, cfg, redactor, path, env);
    let dir = tempfile::tempdir().unwrap();
    let rec = record(Some(7), &[("example", 4)], &["example"]);
    // Nomad exits 1 on a failed deployment; were it to exit 0, the block still says failed.
    c.mode("failed-exit-0");
    let mut steps = Vec::new();
    let err = apply(&env, &rec, dir.path(), &mut steps).await.unwrap_err();
    assert!(err.to_string().contains("e45cc3c1 ended `failed`"), "{err}");
    assert!(!steps[0].ok, "the step is recorded as failed");
    c.mode("conflict");
    let mut steps = Vec::new();
    let err = apply(&env, &rec, dir.path(), &mut steps).await.unwrap_err();
    assert!(matches!(err, ProfileError::StepFailed { .. }));
    assert!(steps[0].output.contains("conflicting job modify index"));
    // No planned index: nothing was approved to run.
    let err = apply(&env, &record(None, &[], &[]), dir.path(), &mut steps)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::Unsupported { .. }), "{err}");
}

#[tokio::test]
async fn rollback_reverts_to_the_recorded_version_and_sees_a_new_one() {
    let c = Cluster::new("plan-rolling-update.txt", 1, 5);
    env!(c, cfg, redactor, path, env);
    let dir = tempfile::tempdir().unwrap();
    let rec = record(Some(7), &[("example", 4)], &["example"]);
    let mut steps = Vec::new();
    super::super::rollback(&env, &rec, dir.path(), &mut steps)
        .await
        .unwrap();
    assert_eq!(
        whats(&steps),
        ["read_version", "rollback", "read_version", "verify_version"]
    );
    assert_eq!(
        steps[1].argv,
        ["nomad", "job", "revert", "-no-color", "example", "4"]
    );
    assert_eq!(c.version(), 6);
    assert!(
        steps[3].ok
            && steps[3]
                .output
                .contains("version 5 before the revert to 4, 6 after")
    );
}

#[tokio::test]
async fn a_revert_that_registers_nothing_fails_the_rollback() {
    let c = Cluster::new("plan-rolling-update.txt", 1, 5);
    env!(c, cfg, redactor, path, env);
    c.mode("revert-noop");
    let dir = tempfile::tempdir().unwrap();
    let rec = record(Some(7), &[("example", 4)], &["example"]);
    let mut steps = Vec::new();
    let err = rollback(&env, &rec, dir.path(), &mut steps)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::StepFailed { .. }), "{err}");
    assert!(!steps.last().unwrap().ok);
}

#[tokio::test]
async fn a_job_already_at_its_version_is_not_reverted() {
    let c = Cluster::new("plan-rolling-update.txt", 1, 4);
    env!(c, cfg, redactor, path, env);
    let dir = tempfile::tempdir().unwrap();
    let rec = record(Some(7), &[("example", 4)], &["example"]);
    let mut steps = Vec::new();
    rollback(&env, &rec, dir.path(), &mut steps).await.unwrap();
    assert_eq!(whats(&steps), ["read_version", "verify_version"]);
    assert!(!c.log().iter().any(|l| l.contains("revert")));
}

#[tokio::test]
async fn a_job_the_change_created_is_stopped() {
    let c = Cluster::new("plan-new-job.txt", 1, 0);
    env!(c, cfg, redactor, path, env);
    let dir = tempfile::tempdir().unwrap();
    let rec = record(Some(0), &[], &["example"]);
    let mut steps = Vec::new();
    rollback(&env, &rec, dir.path(), &mut steps).await.unwrap();
    assert_eq!(
        whats(&steps),
        ["read_version", "rollback", "read_version", "verify_version"]
    );
    assert_eq!(
        steps[1].argv,
        ["nomad", "job", "stop", "-no-color", "-yes", "example"]
    );
    assert!(steps[3].output.contains("is stopped"));
    // Never registered (apply failed before it): nothing to stop, and that is said.
    let c = Cluster::new("plan-new-job.txt", 1, 0);
    c.mode("unregistered");
    env!(c, cfg2, redactor2, path2, env2);
    let mut steps = Vec::new();
    rollback(&env2, &rec, dir.path(), &mut steps).await.unwrap();
    assert_eq!(whats(&steps), ["read_version", "verify_version"]);
    assert!(steps[1].output.contains("never registered"));
}

#[tokio::test]
async fn a_hostile_job_id_in_the_record_never_reaches_an_argv() {
    let c = Cluster::new("plan-rolling-update.txt", 1, 5);
    env!(c, cfg, redactor, path, env);
    let dir = tempfile::tempdir().unwrap();
    let rec = record(Some(7), &[("-detach", 4)], &[]);
    let mut steps = Vec::new();
    let err = rollback(&env, &rec, dir.path(), &mut steps)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::Parse { .. }), "{err}");
    assert!(c.log().is_empty() && steps.is_empty());
}
