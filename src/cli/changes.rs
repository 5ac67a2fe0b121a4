//! `steward changes list|show|approve|reject`: change sets for the operator. `show` prints the
//! record and the diff itself (read from git with the pinned options its digest was computed
//! with; coloured only on a terminal without `NO_COLOR`). Approving re-checks everything the
//! approval is bound to (`engine::change::approve`), asks on a terminal and needs `--yes` off
//! one, then applies the change (`engine::change::apply`) and exits with what that came to.

use std::io::IsTerminal;

use clap::Subcommand;
use serde_json::Value;
use time::OffsetDateTime;

use super::output::{print_json, print_verdict};
use super::{Cli, CliError, internal, usage};
use crate::base::outcome::ExitKind;
use crate::config::Config;
use crate::engine::change::apply;
use crate::engine::change::approve::{self, ApproveError, Checker, Verdict};
use crate::engine::change::diff::{Diff, DiffLimits, diff_between};
use crate::engine::change::record::{ChangeRecord, ChangeState};
use crate::engine::change::store::{ChangeStore, StoreError};

mod show;

#[derive(Debug, Subcommand)]
pub enum ChangesCommand {
    /// Every change, open first: id, state, age, goal, subject, files, lines, intent.
    List {
        /// Only changes in this state (pending, approved, applied, stale, ...).
        #[arg(long, value_name = "STATE")]
        state: Option<String>,
    },
    /// One change: intent, validation, artefacts, blast radius, rollback target, expiry,
    /// history, and the diff itself.
    Show { id: String },
    /// Approve a pending change after re-checking that it is still what was proposed (the
    /// workspace's HEAD, the branch, the diff's digest, the artefacts); then steward applies
    /// it. Asks on a terminal; off a terminal (scripts) `--yes` is required.
    Approve {
        id: String,
        /// Approve without asking (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
        /// Who approves (default: `cli:` and $SUDO_USER or $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Reject a pending change: its worktree is removed and its `steward/` branch deleted.
    Reject {
        id: String,
        /// Why, kept in the record.
        #[arg(long)]
        note: Option<String>,
        /// Who rejects (default: `cli:` and $SUDO_USER or $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

/// `--by`, else `cli:<user>`.
fn operator_name(by: &Option<String>) -> String {
    if let Some(by) = by.as_ref().filter(|b| !b.is_empty()) {
        return by.clone();
    }
    let user = std::env::var("SUDO_USER")
        .ok()
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()));
    format!("cli:{user}")
}

fn kind(e: ApproveError) -> CliError {
    if e.is_usage() { usage(e) } else { internal(e) }
}

fn store_kind(e: StoreError) -> CliError {
    kind(ApproveError::Store(e))
}

pub(super) async fn run(cli: &Cli, cmd: &ChangesCommand) -> Result<ExitKind, CliError> {
    let loaded = cli.config()?;
    let cfg = &loaded.config;
    let store = ChangeStore::open(&cfg.state_dir).map_err(internal)?;
    match cmd {
        ChangesCommand::List { state } => list(cli, &store, state.as_deref()),
        ChangesCommand::Show { id } => {
            // A pending change past its expiry is shown as what it is: expired.
            store
                .expire_due(OffsetDateTime::now_utc())
                .map_err(store_kind)?;
            let rec = store.get(id).map_err(store_kind)?;
            let checker = Checker::new(cfg, &store).map_err(kind)?;
            let diff = read_diff(&checker, &rec).await;
            if cli.json {
                print_json(&show::json(&rec, &diff)?)?;
            } else {
                show::print(&rec, &diff)?;
            }
            Ok(ExitKind::Ok)
        }
        ChangesCommand::Approve { id, yes, by } => {
            // What cannot be approved is said before anyone is asked.
            let rec = approve::approvable(&store, id, OffsetDateTime::now_utc()).map_err(kind)?;
            if !cli.json {
                show::print_plan(&rec)?;
            }
            confirm(&rec, *yes)?;
            let checker = Checker::new(cfg, &store).map_err(kind)?;
            let verdict = approve::approve(&checker, id, &operator_name(by))
                .await
                .map_err(kind)?;
            answer_approval(cli, cfg, verdict).await
        }
        ChangesCommand::Reject { id, note, by } => {
            let checker = Checker::new(cfg, &store).map_err(kind)?;
            let note = note.clone().unwrap_or_default();
            let r = approve::reject(&checker, id, &operator_name(by), &note)
                .await
                .map_err(kind)?;
            if cli.json {
                let mut v = to_object(&r.change)?;
                v.insert("worktree_removed".into(), r.worktree_removed.into());
                v.insert("branch_deleted".into(), r.branch_deleted.into());
                print_verdict(&v, ExitKind::Ok)?;
            } else {
                crate::outln!(
                    "{} rejected; {}, {}",
                    r.change.id,
                    if r.worktree_removed {
                        format!("worktree {} removed", r.change.worktree.display())
                    } else {
                        "no worktree left to remove".to_string()
                    },
                    if r.branch_deleted {
                        format!("branch {} deleted", r.change.branch)
                    } else {
                        format!(
                            "branch {} not deleted (gone, or not steward's)",
                            r.change.branch
                        )
                    }
                )?;
            }
            Ok(ExitKind::Ok)
        }
    }
}

fn list(cli: &Cli, store: &ChangeStore, state: Option<&str>) -> Result<ExitKind, CliError> {
    let wanted = state.map(parse_state).transpose()?;
    let all = store.list().map_err(store_kind)?;
    let shown: Vec<&ChangeRecord> = all
        .iter()
        .filter(|r| wanted.is_none_or(|s| r.state == s))
        .collect();
    if cli.json {
        print_json(&shown)?;
    } else if shown.is_empty() {
        if all.is_empty() {
            crate::outln!("no changes recorded in {}", store.root().display())?;
        } else {
            crate::outln!("no changes match ({} recorded)", all.len())?;
        }
    } else {
        let now = OffsetDateTime::now_utc();
        shown.iter().try_for_each(|r| show::print_line(r, now))?;
    }
    Ok(ExitKind::Ok)
}

fn parse_state(s: &str) -> Result<ChangeState, CliError> {
    ChangeState::ALL
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = ChangeState::ALL.iter().map(|s| s.as_str()).collect();
            usage(anyhow::anyhow!(
                "--state `{s}` is not a change state (one of: {})",
                names.join(", ")
            ))
        })
}

/// The diff `base..head` as git has it now, or why it cannot be read (a rejected change's
/// branch is deleted, but its commits may be gone too).
pub(super) async fn read_diff(checker: &Checker<'_>, rec: &ChangeRecord) -> Result<Diff, String> {
    diff_between(
        checker.git(),
        &rec.workspace,
        &rec.base,
        &rec.head,
        DiffLimits::default(),
    )
    .await
    .map_err(|e| e.to_string())
}

/// On a terminal: ask. Off a terminal: `--yes` or nothing is approved.
fn confirm(rec: &ChangeRecord, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(usage(anyhow::anyhow!(
            "not approved: stdin is not a terminal, so nobody can confirm; pass --yes to approve \
             {} from a script",
            rec.id
        )));
    }
    super::output::stderr(&format!(
        "approve and apply change {} ({} file(s))? [y/N] ",
        rec.id,
        rec.files.len()
    ));
    let mut answer = String::new();
    stdin
        .read_line(&mut answer)
        .map_err(|e| internal(anyhow::Error::new(e).context("cannot read the answer")))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(usage(anyhow::anyhow!(
            "not approved: nothing changed; {} is still pending",
            rec.id
        )))
    }
}

/// Approved: apply. Refused: exit `usage` with the reason. Rebased: exit `needs_human`, the
/// new change waiting for its own approval.
async fn answer_approval(cli: &Cli, cfg: &Config, verdict: Verdict) -> Result<ExitKind, CliError> {
    match verdict {
        Verdict::Approved(rec) => apply_approved(cli, cfg, &rec).await,
        Verdict::Refused(rec) => {
            let msg = format!(
                "not approved: {} is now {}: {}",
                rec.id, rec.state, rec.reason
            );
            if !cli.json {
                return Err(usage(anyhow::anyhow!(msg)));
            }
            let mut v = to_object(&rec)?;
            v.insert("error".into(), msg.into());
            print_verdict(&v, ExitKind::Usage)?;
            Ok(ExitKind::Usage)
        }
        Verdict::Rebased { old, new } => {
            let exit = ExitKind::NeedsHuman;
            if cli.json {
                let mut v = to_object(&old)?;
                v.insert(
                    "rebased_as".into(),
                    serde_json::to_value(&new).map_err(internal)?,
                );
                print_verdict(&v, exit)?;
            } else {
                crate::outln!("not approved: {} is now stale: {}", old.id, old.reason)?;
                crate::outln!(
                    "{} is pending: review it with `steward changes show {}`",
                    new.id,
                    new.id
                )?;
            }
            Ok(exit)
        }
    }
}

/// Applies the approved change (`engine::change::apply`: under the host lock, verified, rolled
/// back when it does not verify) and exits with what it came to: `applied` 0, `rolled_back` 5,
/// `failed` 6, `stale` 2. Ctrl-C stops it as it stops a run (the rollback still runs).
async fn apply_approved(cli: &Cli, cfg: &Config, rec: &ChangeRecord) -> Result<ExitKind, CliError> {
    let (cancel, _guard) = super::run::stoppable(false)?;
    let done = apply::apply(cfg, &rec.id, &cancel)
        .await
        .map_err(|e| CliError {
            kind: e.exit_kind(),
            source: anyhow::Error::new(e)
                .context(format!("{} is approved but was not applied", rec.id)),
        })?;
    let exit = apply::exit_kind(&done);
    if cli.json {
        print_verdict(&done, exit)?;
    } else {
        show::print_applied(&done)?;
    }
    Ok(exit)
}

fn to_object(rec: &ChangeRecord) -> Result<serde_json::Map<String, Value>, CliError> {
    match serde_json::to_value(rec).map_err(internal)? {
        Value::Object(map) => Ok(map),
        _ => Err(internal(anyhow::anyhow!(
            "a change record is not a JSON object"
        ))),
    }
}
