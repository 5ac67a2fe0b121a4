//! Parsers on Nomad's documented transcripts; the fixtures and their sources are in
//! `tests/data/nomad/` (`SOURCES.md`).

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/nomad/",
            $name
        ))
    };
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

#[test]
fn a_new_job_plans_with_index_zero_and_creates() {
    let p = plan(fixture!("plan-new-job.txt")).unwrap();
    assert_eq!(p.job, "example");
    assert_eq!(p.modify_index, 0);
    assert_eq!(p.updates, counts(&[("create", 1)]));
    assert!(!p.placement_failed);
}

#[test]
fn counts_are_summed_and_failed_placements_noticed() {
    let p = plan(fixture!("plan-placement-failure.txt")).unwrap();
    assert_eq!(p.modify_index, 15);
    assert_eq!(p.updates, counts(&[("create", 7), ("in-place update", 1)]));
    assert!(p.placement_failed);
    // Its `Task Group "cache" (failed to place 3 allocations):` line is not a diff line.
    assert!(!p.updates.contains_key("allocations):"));
}

#[test]
fn rolling_and_verbose_plans_read_the_same_way() {
    for text in [
        fixture!("plan-rolling-update.txt"),
        fixture!("plan-verbose-add-task.txt"),
    ] {
        let p = plan(text).unwrap();
        assert_eq!(p.job, "example");
        assert_eq!(p.modify_index, 7);
        assert_eq!(p.updates, counts(&[("create/destroy update", 3)]));
        assert!(!p.placement_failed);
    }
}

#[test]
fn colour_codes_are_ignored() {
    let coloured = fixture!("plan-new-job.txt")
        .replace("+ Job", "\u{1b}[32m+\u{1b}[0m \u{1b}[1mJob")
        .replace("Job Modify Index", "\u{1b}[0m\u{1b}[1mJob Modify Index");
    let p = plan(&coloured).unwrap();
    assert_eq!((p.job.as_str(), p.modify_index), ("example", 0));
}

#[test]
fn malformed_plans_fail_closed() {
    let good = fixture!("plan-rolling-update.txt");
    let bad = [
        String::new(),
        good.replace("Job Modify Index: 7\n", ""),
        good.replace("Job Modify Index: 7", "Job Modify Index: seven"),
        good.replace(
            "Job Modify Index: 7",
            "Job Modify Index: 99999999999999999999999",
        ),
        format!("{good}\nJob Modify Index: 8\n"),
        good.replace("Scheduler dry-run:", "Scheduler:"),
        good.replace("+/- Job: \"example\"", "+/- Job: \"-detach\""),
        good.replace("+/- Job: \"example\"", "+/- Job: \"two words\""),
        good.replace("+/- Job: \"example\"", "+/- Job: \"\""),
        good.replace("+/- Job: \"example\"", "Region: \"global\""),
        good.replace("(3 create/destroy update)", "(3 create/destroy update"),
        good.replace("(3 create/destroy update)", "(three create)"),
        good.replace("(3 create/destroy update)", "(3 $(reboot))"),
        good.replace("\n+/- Task Group", "\n+/- Job: \"other\"\n+/- Task Group"),
        "x".repeat(MAX_TEXT + 1),
    ];
    for text in bad {
        assert!(plan(&text).is_err(), "{}", &text[..text.len().min(200)]);
    }
}

#[test]
fn inspect_reads_version_and_stop_of_the_named_job() {
    let text = fixture!("inspect-example.json");
    assert_eq!(
        inspect(text, "example"),
        Ok(JobState {
            version: 0,
            stopped: false
        })
    );
    assert!(
        inspect(text, "other").is_err(),
        "another job's spec is refused"
    );
    let stopped = text.replace("\"Stop\": false", "\"Stop\": true");
    assert!(inspect(&stopped, "example").unwrap().stopped);
    let v3 = text.replace("\"Version\": 0", "\"Version\": 3");
    assert_eq!(inspect(&v3, "example").unwrap().version, 3);
}

#[test]
fn malformed_jobs_fail_closed() {
    let text = fixture!("inspect-example.json");
    let unwrapped = serde_json::from_str::<serde_json::Value>(text).unwrap()["Job"].to_string();
    for bad in [
        String::new(),
        "No job(s) with prefix or id \"example\" found".to_string(),
        unwrapped,
        text.replace("\"Version\": 0", "\"Version\": -1"),
        text.replace("\"Version\": 0", "\"Version\": \"0\""),
        text.replace("\"Version\": 0", "\"Versions\": 0"),
        text.replace("\"Stop\": false", "\"Stop\": \"no\""),
        text[..text.len() / 2].to_string(),
    ] {
        assert!(
            inspect(&bad, "example").is_err(),
            "{}",
            &bad[..bad.len().min(120)]
        );
    }
}

#[test]
fn a_successful_run_names_its_deployment() {
    let d = deployment(fixture!("run-check-index-successful.txt"))
        .unwrap()
        .unwrap();
    assert_eq!(d.id, "62eb607c");
    assert_eq!(d.status, "successful");
    assert_eq!(d.job_version, Some(2));
}

#[test]
fn a_system_job_has_no_deployment() {
    assert_eq!(deployment(fixture!("run-system-job.txt")), Ok(None));
    assert_eq!(deployment(fixture!("revert.txt")), Ok(None));
}

#[test]
fn an_auto_reverted_deployment_is_failed_whatever_follows() {
    let d = deployment(fixture!("deployment-monitor-failed-auto-revert.txt"))
        .unwrap()
        .unwrap();
    assert_eq!(d.id, "e45cc3c1");
    assert_eq!(d.status, "failed");
    assert_eq!(d.job_version, Some(1));
}

#[test]
fn the_piped_shape_of_the_monitor_reads_the_same() {
    // defaultMonitor (no terminal): no spinner line, blocks not indented.
    let piped: String = fixture!("run-check-index-successful.txt")
        .lines()
        .filter(|l| !l.contains("Deployment \"62eb607c\" successful"))
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();
    let d = deployment(&piped).unwrap().unwrap();
    assert_eq!(
        (d.id.as_str(), d.status.as_str()),
        ("62eb607c", "successful")
    );
}

#[test]
fn a_monitored_deployment_without_its_status_fails_closed() {
    let text = fixture!("run-check-index-successful.txt");
    let cut_off = &text[..text.find("    2021-06-09T16:57:30-07:00\n").unwrap()];
    assert!(deployment(cut_off).is_err());
    let other = text.replace("ID          = 62eb607c", "ID          = 99999999");
    assert!(deployment(&other).is_err());
    let odd = text.replace("Status      = successful", "Status      = Successful!");
    assert!(deployment(&odd).is_err());
    let bad_id = text.replace(
        "Monitoring deployment \"62eb607c\"",
        "Monitoring deployment \"x y\"",
    );
    assert!(deployment(&bad_id).is_err());
}

#[test]
fn job_ids_that_would_be_flags_or_ambiguous_are_refused() {
    assert!(valid_job_id("example") && valid_job_id("web-1.prod_x"));
    for bad in [
        "",
        "-detach",
        "a b",
        "a\"b",
        "a\\b",
        "a\nb",
        &"x".repeat(257),
    ] {
        assert!(!valid_job_id(bad), "{bad:?}");
    }
}
