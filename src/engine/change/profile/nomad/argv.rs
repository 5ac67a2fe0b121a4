//! The argv the `nomad` profile runs (`[change] nomad` is the command, `nomad` by default).
//! Every subcommand gets `-no-color`: steward parses the output, and colour codes are noise.

fn with(nomad: &[String], args: &[&str]) -> Vec<String> {
    let mut argv = nomad.to_vec();
    argv.extend(args.iter().map(|w| w.to_string()));
    argv
}

/// Is this changed file a Nomad job file the profile validates and runs?
pub fn is_job_file(path: &str) -> bool {
    path.ends_with(".nomad") || path.ends_with(".nomad.hcl")
}

pub fn validate(nomad: &[String], file: &str) -> Vec<String> {
    with(nomad, &["job", "validate", "-no-color", file])
}

/// Exit 0: no allocation would change; 1: some would; 255: error.
pub fn plan(nomad: &[String], file: &str) -> Vec<String> {
    with(nomad, &["job", "plan", "-no-color", file])
}

/// Runs the job only if its modify index is still the planned one (0: only if it does not
/// exist yet), then monitors the evaluation and the deployment until they end.
pub fn run(nomad: &[String], check_index: u64, file: &str) -> Vec<String> {
    let index = check_index.to_string();
    with(
        nomad,
        &["job", "run", "-no-color", "-check-index", &index, file],
    )
}

/// `{"Job": {...}}` of the job as it is registered now (its `Version` and `Stop`).
pub fn inspect(nomad: &[String], job: &str) -> Vec<String> {
    with(nomad, &["job", "inspect", "-no-color", job])
}

/// Registers version `version`'s spec again (as a new version) and monitors it.
pub fn revert(nomad: &[String], job: &str, version: u64) -> Vec<String> {
    let version = version.to_string();
    with(nomad, &["job", "revert", "-no-color", job, &version])
}

/// Stops a job the change created (there is no version to revert it to). `-yes`: never wait
/// for a confirmation nobody can give.
pub fn stop(nomad: &[String], job: &str) -> Vec<String> {
    with(nomad, &["job", "stop", "-no-color", "-yes", job])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn job_files_are_nomad_and_nomad_hcl() {
        for yes in ["example.nomad", "jobs/web.nomad.hcl"] {
            assert!(is_job_file(yes), "{yes}");
        }
        for no in ["web.hcl", "nomad.md", "web.nomad.hcl.bak", "jobs/nomad"] {
            assert!(!is_job_file(no), "{no}");
        }
    }

    #[test]
    fn every_argv_is_exact() {
        let nomad = v(&["nomad"]);
        assert_eq!(
            validate(&nomad, "jobs/web.nomad.hcl"),
            v(&[
                "nomad",
                "job",
                "validate",
                "-no-color",
                "jobs/web.nomad.hcl"
            ])
        );
        assert_eq!(
            plan(&nomad, "jobs/web.nomad.hcl"),
            v(&["nomad", "job", "plan", "-no-color", "jobs/web.nomad.hcl"])
        );
        assert_eq!(
            run(&nomad, 7, "jobs/web.nomad.hcl"),
            v(&[
                "nomad",
                "job",
                "run",
                "-no-color",
                "-check-index",
                "7",
                "jobs/web.nomad.hcl"
            ])
        );
        assert_eq!(
            inspect(&nomad, "web"),
            v(&["nomad", "job", "inspect", "-no-color", "web"])
        );
        assert_eq!(
            revert(&nomad, "web", 3),
            v(&["nomad", "job", "revert", "-no-color", "web", "3"])
        );
        assert_eq!(
            stop(&nomad, "web"),
            v(&["nomad", "job", "stop", "-no-color", "-yes", "web"])
        );
        // `[change] nomad` may be a wrapper.
        assert_eq!(
            plan(&v(&["/opt/nomad/bin/nomad"]), "a.nomad")[..3],
            v(&["/opt/nomad/bin/nomad", "job", "plan"])
        );
    }
}
