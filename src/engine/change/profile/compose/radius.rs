//! The compose blast radius: which services a change would recreate, start or remove, from
//! compose's own per-service configuration hashes (`config --hash=*`: the hash compose labels a
//! container with and compares to decide whether `up` recreates it), the change's files against
//! the live workspace's.
//!
//! Both are hashed as if in the workspace (`--project-directory` the project's directory there),
//! so a relative bind mount resolves to the same path on both sides and only a real difference
//! counts. When the workspace's side cannot be hashed, every service of the change is listed:
//! nothing is hidden.

use std::collections::BTreeMap;
use std::path::Path;

use super::super::super::record::Validation;
use super::super::ProfileEnv;
use super::{Project, argv, project_at, run_config};

/// The services of `project` the change would touch, each as `NAME` (recreated), `NAME (new)`
/// or `NAME (removed)`; with the validator that hashed the change (`None` when it failed).
pub(super) async fn services(
    env: &ProfileEnv<'_>,
    name: &str,
    dir: &Path,
    ws: &Path,
    project: &Project,
    round: u8,
) -> (Validation, Option<Vec<String>>) {
    let project_dir = ws.join(&project.dir).display().to_string();
    let mut hash = argv(env, name, dir, project, &["config", "--hash=*"]);
    // `--project-directory` is a global option: before the subcommand.
    let at = hash.len() - 2;
    hash.splice(at..at, ["--project-directory".to_string(), project_dir]);
    let (v, out) = run_config(env, &hash, &dir.join(&project.dir), round).await;
    let Some(changed) = out.as_deref().map(parse_hashes) else {
        return (v, None);
    };
    let live = match project_at(ws, &project.dir) {
        Some(live) => {
            let argv = argv(env, name, ws, &live, &["config", "--hash=*"]);
            let (_, out) = run_config(env, &argv, &ws.join(&project.dir), round).await;
            out.as_deref().map(parse_hashes)
        }
        None => Some(BTreeMap::new()),
    };
    (v, Some(compare(&changed, live.as_ref())))
}

/// `SERVICE HASH` lines.
pub fn parse_hashes(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}

/// The change's services against the live ones (`None`: unknown, so every service is listed).
pub fn compare(
    changed: &BTreeMap<String, String>,
    live: Option<&BTreeMap<String, String>>,
) -> Vec<String> {
    let Some(live) = live else {
        return changed.keys().cloned().collect();
    };
    let mut out: Vec<String> = changed
        .iter()
        .filter_map(|(service, hash)| match live.get(service) {
            None => Some(format!("{service} (new)")),
            Some(h) if h != hash => Some(service.clone()),
            Some(_) => None,
        })
        .collect();
    out.extend(
        live.keys()
            .filter(|s| !changed.contains_key(*s))
            .map(|s| format!("{s} (removed)")),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recreated_new_and_removed_services_are_told_apart() {
        let changed = parse_hashes("web aaa\ndb bbb\nnew ccc\n");
        let live = parse_hashes("web aaa\ndb 111\ngone ddd\n");
        assert_eq!(
            compare(&changed, Some(&live)),
            vec!["db", "new (new)", "gone (removed)"]
        );
        assert_eq!(compare(&changed, None), vec!["db", "new", "web"]);
    }
}
