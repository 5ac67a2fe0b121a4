use time::{Duration, OffsetDateTime};

use super::*;

fn record(state: ChangeState, created: OffsetDateTime) -> ChangeRecord {
    ChangeRecord::sample(state, created)
}

#[test]
fn a_change_moves_between_state_directories_and_records_who_moved_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = ChangeStore::open(dir.path()).unwrap();
    let r = record(ChangeState::Pending, OffsetDateTime::now_utc());
    store.create(&r).unwrap();
    assert!(matches!(store.create(&r), Err(StoreError::Exists(_))));
    let pending = dir.path().join(format!("changes/pending/{}.json", r.id));
    assert!(pending.exists());

    let moved = store
        .transition::<StoreError>(
            &r.id,
            &[ChangeState::Pending],
            ChangeState::Approved,
            "cli:root",
            "",
            |_| Ok(()),
        )
        .unwrap();
    assert_eq!(moved.state, ChangeState::Approved);
    assert_eq!(moved.approved_by(), Some("cli:root"));
    assert!(!pending.exists());
    assert!(
        dir.path()
            .join(format!("changes/approved/{}.json", r.id))
            .exists()
    );

    // A second approval finds it approved, not pending, and nothing moves.
    let again = store.transition::<StoreError>(
        &r.id,
        &[ChangeState::Pending],
        ChangeState::Approved,
        "cli:x",
        "",
        |_| Ok(()),
    );
    assert!(
        matches!(
            again,
            Err(StoreError::WrongState {
                state: ChangeState::Approved,
                ..
            })
        ),
        "{again:?}"
    );
    assert_eq!(store.get(&r.id).unwrap().history.len(), 1);
}

#[test]
fn a_refused_update_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = ChangeStore::open(dir.path()).unwrap();
    let r = record(ChangeState::Pending, OffsetDateTime::now_utc());
    store.create(&r).unwrap();
    let refused = store.transition(
        &r.id,
        &[ChangeState::Pending],
        ChangeState::Approved,
        "x",
        "",
        |_| Err(StoreError::Unknown("refused".into())),
    );
    assert!(refused.is_err());
    assert_eq!(store.get(&r.id).unwrap().state, ChangeState::Pending);
}

#[test]
fn a_crash_between_write_and_remove_reads_as_the_later_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = ChangeStore::open(dir.path()).unwrap();
    let r = record(ChangeState::Pending, OffsetDateTime::now_utc());
    store.create(&r).unwrap();
    let mut later = r.clone();
    later.state = ChangeState::Rejected;
    ledger::write_json(
        &dir.path().join(format!("changes/rejected/{}.json", r.id)),
        &later,
    )
    .unwrap();
    assert_eq!(store.get(&r.id).unwrap().state, ChangeState::Rejected);
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, ChangeState::Rejected);
}

#[test]
fn list_expires_pending_changes_past_their_time_and_puts_open_ones_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = ChangeStore::open(dir.path()).unwrap();
    let now = OffsetDateTime::now_utc();
    let mut old = record(ChangeState::Pending, now - Duration::days(8));
    old.expires = now - Duration::days(1);
    let fresh = record(ChangeState::Pending, now - Duration::days(2));
    let done = record(ChangeState::Applied, now);
    for r in [&old, &fresh, &done] {
        store.create(r).unwrap();
    }
    let listed = store.list().unwrap();
    let states: Vec<_> = listed.iter().map(|r| (r.id.clone(), r.state)).collect();
    assert_eq!(
        states,
        vec![
            (fresh.id.clone(), ChangeState::Pending),
            (done.id.clone(), ChangeState::Applied),
            (old.id.clone(), ChangeState::Expired),
        ]
    );
    assert_eq!(
        store.get(&old.id).unwrap().reason,
        "nobody decided before it expired"
    );
}

#[test]
fn unknown_ids_and_foreign_formats_are_errors_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = ChangeStore::open(dir.path()).unwrap();
    assert!(matches!(
        store.get("c-../../etc"),
        Err(StoreError::Unknown(_))
    ));
    let mut r = record(ChangeState::Pending, OffsetDateTime::now_utc());
    r.format = 99;
    let p = dir.path().join(format!("changes/pending/{}.json", r.id));
    ledger::write_json(&p, &r).unwrap();
    let e = store.get(&r.id).unwrap_err().to_string();
    assert!(e.contains("format 99") && e.contains(&r.id), "{e}");
    std::fs::write(&p, "{not json").unwrap();
    let e = store.get(&r.id).unwrap_err().to_string();
    assert!(e.contains(&p.display().to_string()), "{e}");
}
