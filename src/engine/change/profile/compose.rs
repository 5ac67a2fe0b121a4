//! The `compose` profile: a change to compose files is applied with `<compose> up -d` for each
//! compose project it touches, and rolled back by bringing the base's files up again.
//!
//! Which projects a change touches: a project is a directory holding a compose file
//! (`compose.yaml`, `compose.yml`, `docker-compose.yaml`, `docker-compose.yml`, the first found
//! in that order, as compose itself looks for them) with its override file if there is one
//! (`compose.override.yaml`, ...). A changed file belongs to the nearest directory at or above it
//! that holds a compose file, so a changed bind-mounted config file under the project's
//! directory touches the project too. Deleting or renaming a compose file is refused: steward
//! does not bring projects down (do that by hand).
//!
//! Every compose call is explicit about the project: `-p NAME` (the name compose itself gives the
//! project in the live workspace: `.env`'s `COMPOSE_PROJECT_NAME`, else the files' top-level
//! `name:`, else the directory's name; `compose/name.rs`) and `-f FILE` for each file, so a run
//! from a worktree or another directory never makes a second project. A change that would rename
//! a running project is refused.
//! `up -d --remove-orphans`: a service the change removes is removed (steward's project is
//! exactly its files; a project that is also run with other `-f` files is not for this profile).
//!
//! Static checks: `<compose> -p NAME -f FILE... config` per touched project, recording the
//! sha256 of its output in `artefacts.compose_config_sha256[MAIN_FILE]` (with the worktree's
//! path replaced by the workspace's, so the hash is of what applying in the workspace runs and
//! does not depend on where the tree was checked out), and `config --hash=*` for
//! `blast_radius.compose_services[MAIN_FILE]`: the services whose configuration hash differs
//! from the live workspace's (those compose recreates), new ones and removed ones (`radius.rs`).

mod name;
mod radius;

use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::base::exec;
use crate::defs::change::Profile;
use crate::engine::change::git::{self, ChangeGit};

use super::super::record::{ChangeFile, ChangeRecord, Step, Validation, ValidatorSource};
use super::{OUTPUT_TAIL, ProfileEnv, ProfileError, StaticReport, combined, run_step, tail};

const PROFILE: Profile = Profile::Compose;

/// The names compose looks for, in its order.
pub const MAIN_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];
pub const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// One compose project of the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Its directory, relative to the repository root (`""` for the root).
    pub dir: String,
    /// The main compose file, relative to the root: the key of its artefacts.
    pub main: String,
    /// The main file, then the override file if there is one, relative to the root.
    pub files: Vec<String>,
}

/// The project whose directory is `rel_dir` in `tree`, if that directory holds a compose file.
pub fn project_at(tree: &Path, rel_dir: &str) -> Option<Project> {
    let join = |name: &str| {
        if rel_dir.is_empty() {
            name.to_string()
        } else {
            format!("{rel_dir}/{name}")
        }
    };
    let main = MAIN_FILES
        .iter()
        .map(|n| join(n))
        .find(|p| tree.join(p).is_file())?;
    let mut files = vec![main.clone()];
    files.extend(
        OVERRIDE_FILES
            .iter()
            .map(|n| join(n))
            .find(|p| tree.join(p).is_file()),
    );
    Some(Project {
        dir: rel_dir.to_string(),
        main,
        files,
    })
}

/// The projects the changed files belong to in `tree` (nearest compose directory at or above
/// each file), each once, in the order first met.
pub fn touched(tree: &Path, files: &[ChangeFile]) -> Vec<Project> {
    let mut out: Vec<Project> = Vec::new();
    let paths = files
        .iter()
        .flat_map(|f| std::iter::once(&f.path).chain(f.old_path.as_ref()));
    for path in paths {
        let mut dir = parent(path);
        let found = loop {
            if let Some(p) = project_at(tree, dir) {
                break Some(p);
            }
            if dir.is_empty() {
                break None;
            }
            dir = parent(dir);
        };
        if let Some(p) = found
            && !out.iter().any(|o| o.dir == p.dir)
        {
            out.push(p);
        }
    }
    out
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn is_compose_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    MAIN_FILES.contains(&name) || OVERRIDE_FILES.contains(&name)
}

/// The compose files the change deletes or renames away: refused.
pub fn removed_compose_files(files: &[ChangeFile]) -> Vec<String> {
    files
        .iter()
        .filter_map(|f| match f.status.as_str() {
            "deleted" if is_compose_file(&f.path) => Some(f.path.clone()),
            "renamed" => f.old_path.clone().filter(|p| is_compose_file(p)),
            _ => None,
        })
        .collect()
}

/// `<compose> -p NAME -f FILE... ARGS`, the files under `tree`.
fn argv(
    env: &ProfileEnv<'_>,
    name: &str,
    tree: &Path,
    project: &Project,
    args: &[&str],
) -> Vec<String> {
    let mut argv = env.cfg.compose.clone();
    argv.extend(["-p".to_string(), name.to_string()]);
    for f in &project.files {
        argv.push("-f".to_string());
        argv.push(tree.join(f).display().to_string());
    }
    argv.extend(args.iter().map(|a| a.to_string()));
    argv
}

/// The project's name in `root` (the live workspace, the change's tree or the base), as compose
/// decides it there (`compose/name.rs`).
fn name_in(root: &Path, project: &Project) -> Result<String, ProfileError> {
    let dir = if project.dir.is_empty() {
        root.to_path_buf()
    } else {
        root.join(&project.dir)
    };
    let files: Vec<PathBuf> = project.files.iter().map(|f| root.join(f)).collect();
    name::resolve(&dir, &files).map_err(|why| ProfileError::Unsupported {
        profile: PROFILE,
        what: "name the project",
        why,
    })
}

/// The name steward runs a touched project under: the live workspace's for a project it has
/// (the change must not rename it: compose would make a second project beside the running
/// one), the change's own for a project the change adds.
fn name_for_change(ws: &Path, tree: &Path, project: &Project) -> Result<String, ProfileError> {
    let in_tree = name_in(tree, project)?;
    if project_at(ws, &project.dir).is_none() {
        return Ok(in_tree);
    }
    let live = name_in(ws, project)?;
    if live != in_tree {
        return Err(ProfileError::Unsupported {
            profile: PROFILE,
            what: "rename the project",
            why: format!(
                "the change renames the compose project from `{live}` to `{in_tree}`: steward \
                 does not move a running project (bring it down by hand, then commit)"
            ),
        });
    }
    Ok(live)
}

pub async fn static_checks(
    env: &ProfileEnv<'_>,
    dir: &Path,
    files: &[ChangeFile],
    round: u8,
) -> StaticReport {
    let mut report = StaticReport::default();
    for path in removed_compose_files(files) {
        report.validations.push(refused(
            &path,
            round,
            "a change that deletes or renames a compose file is not applied by steward: bring the \
             project down by hand, then commit",
        ));
    }
    let ws = workspace_of(env, dir).await;
    for project in touched(dir, files) {
        let name = match name_for_change(&ws, dir, &project) {
            Ok(n) => n,
            Err(e) => {
                report
                    .validations
                    .push(refused(&project.main, round, &e.to_string()));
                continue;
            }
        };
        let cwd = dir.join(&project.dir);
        let config = argv(env, &name, dir, &project, &["config"]);
        let (v, out) = run_config(env, &config, &cwd, round).await;
        report.validations.push(v);
        if let Some(out) = out {
            let text = out.replace(&dir.display().to_string(), &ws.display().to_string());
            let sha = hex::encode(Sha256::digest(text.as_bytes()));
            report
                .artefacts
                .compose_config_sha256
                .insert(project.main.clone(), sha);
        }
        let (v, services) = radius::services(env, &name, dir, &ws, &project, round).await;
        report.validations.push(v);
        if let Some(services) = services {
            report
                .blast_radius
                .compose_services
                .insert(project.main.clone(), services);
        }
    }
    report
}

/// The live checkout a worktree belongs to (the parent of the repository's common `.git`); the
/// tree itself when git cannot say.
async fn workspace_of(env: &ProfileEnv<'_>, dir: &Path) -> PathBuf {
    let args = ["rev-parse", "--path-format=absolute", "--git-common-dir"];
    let found = match ChangeGit::new(env.path_env) {
        Ok(g) => g.ok(dir, &args).await.ok(),
        Err(_) => None,
    };
    found
        .map(|out| PathBuf::from(git::line(&out)))
        .filter(|p| p.file_name().is_some_and(|n| n == ".git"))
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| dir.to_path_buf())
}

/// A validator that did not run because steward refuses what it would check.
fn refused(path: &str, round: u8, why: &str) -> Validation {
    Validation {
        argv: vec![],
        source: ValidatorSource::Profile,
        round,
        passed: false,
        exit_code: None,
        timed_out: false,
        duration_ms: 0,
        output: String::new(),
        error: Some(format!("{path}: {why}")),
    }
}

/// One `config` call, as a profile validator (HOME empty, `[change] env`), with its stdout when
/// it passed and was read whole.
async fn run_config(
    env: &ProfileEnv<'_>,
    argv: &[String],
    cwd: &Path,
    round: u8,
) -> (Validation, Option<String>) {
    let clock = Instant::now();
    let home = tempfile::tempdir();
    let home_path = home
        .as_ref()
        .map(|h| h.path().display().to_string())
        .unwrap_or_else(|_| "/nonexistent".to_string());
    let mut extra: Vec<(&str, &str)> = vec![("HOME", home_path.as_str())];
    extra.extend(env.executor_env());
    let cmd = exec::Command {
        argv,
        path_env: env.path_env,
        cwd: Some(cwd),
        timeout: env.validate_timeout(),
        stdout_cap: 16 * OUTPUT_TAIL,
        stderr_tail: OUTPUT_TAIL,
    };
    let result = exec::run_env(&cmd, &extra).await;
    let duration_ms = clock.elapsed().as_millis() as u64;
    let mut v = Validation {
        argv: argv.to_vec(),
        source: ValidatorSource::Profile,
        round,
        passed: false,
        exit_code: None,
        timed_out: false,
        duration_ms,
        output: String::new(),
        error: None,
    };
    match result {
        Ok(out) => {
            v.exit_code = out.exit_code();
            v.timed_out = out.timed_out();
            v.output = tail(&env.redactor.redact(&combined(&out.stdout, &out.stderr)));
            v.passed = out.exit_code() == Some(0) && !out.stdout_truncated;
            if out.timed_out() {
                v.error = Some(out.describe(env.validate_timeout()));
            } else if out.stdout_truncated {
                v.error = Some("its output is too large to hash whole".to_string());
            }
            let stdout = v.passed.then_some(out.stdout);
            (v, stdout)
        }
        Err(e) => {
            v.error = Some(e.to_string());
            (v, None)
        }
    }
}

/// `up -d --remove-orphans` for every touched project, from `dir` (the workspace, fast-forwarded
/// to the change). Stops at the first failure (the orchestrator rolls every project back).
pub async fn apply(
    env: &ProfileEnv<'_>,
    rec: &ChangeRecord,
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    let removed = removed_compose_files(&rec.files);
    if !removed.is_empty() {
        return Err(ProfileError::Unsupported {
            profile: PROFILE,
            what: "apply",
            why: format!(
                "the change deletes or renames compose files ({})",
                removed.join(", ")
            ),
        });
    }
    let projects = touched(dir, &rec.files);
    let names = projects
        .iter()
        .map(|p| name_in(dir, p))
        .collect::<Result<Vec<_>, _>>()?;
    for (project, name) in projects.iter().zip(names) {
        let up = argv(env, &name, dir, project, &["up", "-d", "--remove-orphans"]);
        run_step(env, "apply", &up, &dir.join(&project.dir), steps).await?;
    }
    Ok(())
}

/// Every project the change touched, returned to the base: `dir` is the workspace, reset to the
/// base. A project the base has is brought up from the base's files; one the change added is
/// brought down with the change's files (from its worktree). Every project is tried; the first
/// failure is returned.
pub async fn rollback(
    env: &ProfileEnv<'_>,
    rec: &ChangeRecord,
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    if !rec.worktree.is_dir() {
        return Err(ProfileError::Unsupported {
            profile: PROFILE,
            what: "roll back",
            why: format!(
                "the change's worktree {} is gone: which projects it touched is unknown",
                rec.worktree.display()
            ),
        });
    }
    let mut first_error = None;
    for changed in touched(&rec.worktree, &rec.files) {
        let result = rollback_one(env, dir, &rec.worktree, &changed, steps).await;
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn rollback_one(
    env: &ProfileEnv<'_>,
    dir: &Path,
    change_tree: &Path,
    changed: &Project,
    steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    let cwd = dir.join(&changed.dir);
    match project_at(dir, &changed.dir) {
        Some(base) => {
            let name = name_in(dir, &base)?;
            let up = argv(env, &name, dir, &base, &["up", "-d", "--remove-orphans"]);
            run_step(env, "rollback", &up, &cwd, steps)
                .await
                .map(|_| ())
        }
        None => {
            // A project the change added: named as the change named it.
            let name = name_in(change_tree, changed)?;
            let down = argv(
                env,
                &name,
                change_tree,
                changed,
                &["down", "--remove-orphans"],
            );
            let cwd = change_tree.join(&changed.dir);
            run_step(env, "rollback", &down, &cwd, steps)
                .await
                .map(|_| ())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_project_keeps_its_name_and_a_rename_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (ws, tree) = (tmp.path().join("ws"), tmp.path().join("tree"));
        let write = |root: &Path, dir: &str, text: &str| {
            std::fs::create_dir_all(root.join(dir)).unwrap();
            std::fs::write(root.join(dir).join("compose.yaml"), text).unwrap();
        };
        write(&ws, "app", "name: shop\nservices: {}\n");
        write(&tree, "app", "name: shop\nservices: {a: {image: x}}\n");
        let app = project_at(&tree, "app").unwrap();
        assert_eq!(name_for_change(&ws, &tree, &app).unwrap(), "shop");
        write(&tree, "app", "name: store\nservices: {}\n");
        let e = name_for_change(&ws, &tree, &app).unwrap_err().to_string();
        assert!(e.contains("from `shop` to `store`"), "{e}");
        // A project the change adds is named as the change names it.
        write(&tree, "new", "name: fresh\nservices: {}\n");
        let new = project_at(&tree, "new").unwrap();
        assert_eq!(name_for_change(&ws, &tree, &new).unwrap(), "fresh");
    }

    fn file(path: &str, status: &str, old: Option<&str>) -> ChangeFile {
        ChangeFile {
            path: path.into(),
            status: status.into(),
            old_path: old.map(str::to_string),
            added: 1,
            removed: 0,
            binary: false,
        }
    }

    #[test]
    fn a_changed_file_belongs_to_the_nearest_compose_directory() {
        let t = tempfile::tempdir().unwrap();
        let w = |p: &str| {
            let p = t.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "services: {}\n").unwrap();
        };
        w("compose.yml");
        w("app/docker-compose.yaml");
        w("app/docker-compose.override.yml");
        w("app/conf/nginx.conf");
        w("docs/readme.md");
        let got = touched(
            t.path(),
            &[
                file("app/conf/nginx.conf", "modified", None),
                file("app/docker-compose.yaml", "modified", None),
                file("docs/readme.md", "modified", None),
            ],
        );
        assert_eq!(
            got,
            vec![
                Project {
                    dir: "app".into(),
                    main: "app/docker-compose.yaml".into(),
                    files: vec![
                        "app/docker-compose.yaml".into(),
                        "app/docker-compose.override.yml".into()
                    ],
                },
                Project {
                    dir: "".into(),
                    main: "compose.yml".into(),
                    files: vec!["compose.yml".into()],
                },
            ]
        );
        // compose.yaml wins over docker-compose.yml, as compose itself chooses.
        w("app/compose.yaml");
        assert_eq!(
            project_at(t.path(), "app").unwrap().main,
            "app/compose.yaml"
        );
        assert!(project_at(t.path(), "docs").is_none());
    }

    #[test]
    fn deleting_or_renaming_a_compose_file_is_refused() {
        let files = [
            file("a/compose.yaml", "deleted", None),
            file("b/new.yaml", "renamed", Some("b/docker-compose.yml")),
            file("c/compose.yaml", "renamed", Some("c/other.yaml")),
            file("d/data.yml", "deleted", None),
        ];
        assert_eq!(
            removed_compose_files(&files),
            vec![
                "a/compose.yaml".to_string(),
                "b/docker-compose.yml".to_string()
            ]
        );
    }
}
