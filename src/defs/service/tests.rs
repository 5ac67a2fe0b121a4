use std::path::Path;

use super::*;

const GOOD: &str = "\
# the web front
owner: node1
image: docker.io/library/nginx:1.27
container: web-1
description: the public web server
exposure:
  - port: 443
    protocol: tcp
    visibility: public
  - port: 9113
    visibility: internal
dependencies: [db]
healthcheck:
  kind: http
  url: http://127.0.0.1:8080/health
  status: [200, 204]
  timeout_secs: 5
restart: unless-stopped
persistence:
  - /var/lib/web
variables:
  - API_TOKEN
  - LOG_LEVEL
";

const DB: &str = "owner: node1\nimage: postgres:16\n";

fn workspace(services: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in services {
        let d = dir.path().join("services").join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(CONTRACT_FILE), text).unwrap();
    }
    dir
}

fn parse_one(text: &str) -> Result<ServiceContract, ServiceError> {
    parse::parse("web", Path::new("services/web/service.yaml"), text).map(|p| p.contract)
}

/// The error's line and field, checked against the message too.
fn line_and_field(text: &str) -> (u64, String) {
    match parse_one(text) {
        Err(e @ ServiceError::Field { .. }) => {
            let msg = e.to_string();
            let ServiceError::Field {
                line, field, file, ..
            } = e
            else {
                unreachable!()
            };
            assert!(
                msg.starts_with(&format!(
                    "services/web/service.yaml:{line}: field `{field}`"
                )),
                "{msg}"
            );
            assert_eq!(file, Path::new("services/web/service.yaml"));
            (line, field)
        }
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn a_full_contract_reads_into_every_field() {
    let ws = workspace(&[("web", GOOD), ("db", DB)]);
    let all = load_all(ws.path()).unwrap();
    assert_eq!(
        all.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["db", "web"]
    );
    let web = find(ws.path(), "web").unwrap().unwrap();
    assert_eq!(web.owner, "node1");
    assert_eq!(web.image, "docker.io/library/nginx:1.27");
    assert_eq!(web.container, "web-1");
    assert_eq!(web.exposure.len(), 2);
    assert_eq!(
        web.exposure[1].protocol,
        Protocol::Tcp,
        "tcp is the default"
    );
    assert_eq!(web.exposure[1].visibility, Visibility::Internal);
    assert_eq!(web.dependencies, ["db"]);
    assert_eq!(web.restart, Some(RestartPolicy::UnlessStopped));
    assert_eq!(web.persistence, [PathBuf::from("/var/lib/web")]);
    assert_eq!(web.variables, ["API_TOKEN", "LOG_LEVEL"]);
    let check = web.healthcheck.unwrap();
    assert_eq!(check.name, "web-health");
    assert_eq!(check.kind.name(), "http");
    assert_eq!(check.timeout, std::time::Duration::from_secs(5));
    assert!(
        check.origin.ends_with("service.yaml:14"),
        "{}",
        check.origin
    );
    let db = find(ws.path(), "db").unwrap().unwrap();
    assert_eq!(
        db.container, "db",
        "the container defaults to the service's name"
    );
    assert!(db.healthcheck.is_none());
    assert!(find(ws.path(), "absent").unwrap().is_none());
}

#[test]
fn no_services_directory_is_no_contracts_and_plain_files_are_not_services() {
    let ws = tempfile::tempdir().unwrap();
    assert!(load_all(ws.path()).unwrap().is_empty());
    std::fs::create_dir(ws.path().join("services")).unwrap();
    std::fs::write(ws.path().join("services/README.md"), "notes").unwrap();
    assert!(load_all(ws.path()).unwrap().is_empty());
}

#[test]
fn each_error_names_the_file_the_line_and_the_field() {
    let cases: &[(&str, u64, &str)] = &[
        ("owner: a\nimage: b\ncolour: red\n", 3, "colour"),
        ("owner: a\n", 1, "image"),
        (
            "owner: a\nimage: b\nexposure:\n  - port: http\n    visibility: public\n",
            4,
            "port",
        ),
        (
            "owner: a\nimage: b\nexposure:\n  - port: 80\n    visibility: outside\n",
            5,
            "visibility",
        ),
        (
            "owner: a\nimage: b\nexposure:\n  - port: 0\n    visibility: public\n",
            4,
            "exposure.port",
        ),
        ("owner: a\nimage: b\nrestart: sometimes\n", 3, "restart"),
        (
            "owner: a\nimage: b\npersistence:\n  - data/\n",
            4,
            "persistence",
        ),
        (
            "owner: a\nimage: b\nvariables:\n  - TOKEN=hunter2\n",
            4,
            "variables",
        ),
        (
            "owner: a\nimage: b\ndependencies:\n  - ../etc\n",
            4,
            "dependencies",
        ),
        ("owner: '  '\nimage: b\n", 1, "owner"),
        ("owner: a\nimage: b\ncontainer: x/y\n", 3, "container"),
        (
            "owner: a\nimage: b\nhealthcheck:\n  kind: http\n  port: 80\n",
            5,
            "healthcheck.port",
        ),
        // A key that is missing: the line where the mapping starts.
        (
            "owner: a\nimage: b\nhealthcheck:\n  kind: tcp\n  host: h\n",
            4,
            "healthcheck.port",
        ),
        (
            "owner: a\nimage: b\nhealthcheck:\n  kind: http\n  url: u\n  colour: 1\n",
            6,
            "healthcheck.colour",
        ),
        (
            "owner: a\nimage: b\nhealthcheck:\n  name: x\n  kind: tcp\n",
            4,
            "healthcheck.name",
        ),
        (
            "owner: a\nimage: b\nhealthcheck:\n  kind: teapot\n",
            4,
            "healthcheck.kind",
        ),
    ];
    for (text, line, field) in cases {
        let got = line_and_field(text);
        assert_eq!(got, (*line, field.to_string()), "for:\n{text}");
    }
}

#[test]
fn a_dependency_on_an_undeclared_service_names_its_line() {
    let ws = workspace(&[("web", "owner: a\nimage: b\ndependencies:\n  - cache\n")]);
    let err = load_all(ws.path()).unwrap_err().to_string();
    assert!(err.ends_with("services/web/service.yaml:4: field `dependencies`: `cache` is not a declared service (no services/cache/)"), "{err}");
}

#[test]
fn directories_fail_closed() {
    let ws = workspace(&[]);
    std::fs::create_dir_all(ws.path().join("services/empty")).unwrap();
    let err = load_all(ws.path()).unwrap_err();
    assert!(matches!(err, ServiceError::Missing { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("services/empty: a service directory without service.yaml")
    );

    let ws = workspace(&[("bad name", DB)]);
    let err = load_all(ws.path()).unwrap_err();
    assert!(matches!(err, ServiceError::BadName { .. }), "{err}");

    let ws = workspace(&[(
        "big",
        &format!("owner: a\nimage: b\ndescription: {}\n", "x".repeat(70_000)),
    )]);
    assert!(matches!(
        load_all(ws.path()).unwrap_err(),
        ServiceError::TooLarge { .. }
    ));

    let many: Vec<(String, &str)> = (0..=MAX_SERVICES).map(|i| (format!("s{i}"), DB)).collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let ws = workspace(&refs);
    assert!(matches!(
        load_all(ws.path()).unwrap_err(),
        ServiceError::TooMany { .. }
    ));
}

#[test]
fn safe_names() {
    for ok in ["web", "db-1", "a.b_c", "9x"] {
        assert!(is_safe_name(ok), "{ok}");
    }
    for bad in ["", ".hidden", "..", "a/b", "-x", "a b", &"x".repeat(65)] {
        assert!(!is_safe_name(bad), "{bad}");
    }
}
