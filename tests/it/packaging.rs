//! What a packager installs beside the binary: the shell completion scripts and the man page
//! (`steward completions SHELL`, `steward man`), and the flake that exposes the package, the
//! NixOS module and an overlay.

use std::path::Path;
use std::process::Command;

use clap::CommandFactory;

use crate::common::cli::steward_bin;
use crate::common::require::tool;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn steward_stdout(args: &[&str]) -> String {
    let out = Command::new(steward_bin())
        .args(args)
        .env_remove("STEWARD_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "steward {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every visible top-level subcommand of the parser the binary uses.
fn subcommands() -> Vec<String> {
    steward::cli::Cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .collect()
}

/// Completes `line` (the words typed so far, the last one partial) with the generated bash
/// script loaded into a fresh bash, the way bash's programmable completion calls it.
fn bash_complete(bash: &Path, script: &Path, words: &[&str]) -> Vec<String> {
    let cword = words.len() - 1;
    let line = words.join(" ");
    let program = format!(
        "source {script} || exit 9\n\
         complete -p steward >/dev/null || exit 8\n\
         COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{line}'; COMP_POINT={point}\n\
         _steward steward '{cur}' '{prev}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script = script.display(),
        words = words.join(" "),
        point = line.len(),
        cur = words[cword],
        prev = words[cword.saturating_sub(1)],
    );
    let out = Command::new(bash)
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_bash_completion_loads_and_completes_subcommands_and_their_words() {
    let Some(bash) = tool("bash") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("steward.bash");
    std::fs::write(&script, steward_stdout(&["completions", "bash"])).unwrap();

    assert_eq!(
        bash_complete(&bash, &script, &["steward", "compl"]),
        ["completions"]
    );
    let all = bash_complete(&bash, &script, &["steward", ""]);
    for name in subcommands() {
        assert!(all.contains(&name), "{name} not offered: {all:?}");
    }
    // A subcommand's own words: the shells `completions` accepts.
    let shells = bash_complete(&bash, &script, &["steward", "completions", "z"]);
    assert_eq!(shells, ["zsh"]);
}

#[test]
fn completions_exist_for_the_shells_the_package_installs() {
    for (shell, marker) in [
        ("bash", "complete -F _steward"),
        ("zsh", "#compdef steward"),
        ("fish", "complete -c steward"),
    ] {
        let text = steward_stdout(&["completions", shell]);
        assert!(text.contains(marker), "{shell}: no {marker:?}");
    }
    let out = Command::new(steward_bin())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn the_man_page_is_roff_naming_every_subcommand_and_renders() {
    let page = steward_stdout(&["man"]);
    assert!(
        page.starts_with(".ie"),
        "not roff: {}",
        &page[..80.min(page.len())]
    );
    assert!(page.contains(".TH steward 1"), "no title header");
    for name in subcommands() {
        assert!(
            page.contains(&format!("steward\\-{}", name.replace('-', "\\-")))
                || page.contains(&format!("\n{name}\n"))
                || page.contains(&format!("{name}(1)")),
            "the man page does not name `{name}`"
        );
    }
    let Some(man) = tool("man") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("steward.1");
    std::fs::write(&file, &page).unwrap();
    let out = Command::new(man)
        .arg("-l")
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SUBCOMMANDS"), "{text}");
    assert!(text.contains("completions"), "{text}");
}

fn nix_instantiate(nix: &Path, args: &[&str]) -> std::process::Output {
    Command::new(nix)
        .args(args)
        // Even --parse opens Nix's state directory (creating it): keep it out of /nix.
        .env("HOME", std::env::temp_dir())
        .env(
            "NIX_STATE_DIR",
            std::env::temp_dir().join("steward-nix-state"),
        )
        .output()
        .unwrap()
}

/// The flake's outputs function applied to stub inputs (there is no nixpkgs here): a
/// `legacyPackages.SYSTEM.callPackage` that records which file and system it was given.
const FLAKE_EVAL: &str = r#"
let
  flake = import FLAKE;
  stubPkgs = system: {
    callPackage = path: args: { name = "steward"; inherit system; file = toString path; };
  };
  nixpkgs.legacyPackages = {
    x86_64-linux = stubPkgs "x86_64-linux";
    aarch64-linux = stubPkgs "aarch64-linux";
  };
  out = flake.outputs { self = out; inherit nixpkgs; };
in {
  inputs = builtins.attrNames flake.inputs;
  outputs = builtins.attrNames out;
  packages = builtins.mapAttrs (s: p: { inherit (p.default) system file; }) out.packages;
  overlay = (out.overlays.default (stubPkgs "x86_64-linux") { }).steward.file;
  module = builtins.attrNames (builtins.functionArgs out.nixosModules.default);
  # The module applied to empty arguments: its top level is lazy, so this names its sections.
  module_sections = builtins.attrNames (out.nixosModules.default { config = { }; lib = { }; pkgs = { }; });
}
"#;

#[test]
fn the_flake_parses_and_exposes_package_module_and_overlay_per_system() {
    let Some(nix) = tool("nix-instantiate") else {
        return;
    };
    let flake = Path::new(REPO).join("flake.nix");
    let out = nix_instantiate(&nix, &["--parse", flake.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let expr = FLAKE_EVAL.replace("FLAKE", flake.to_str().unwrap());
    let out = nix_instantiate(&nix, &["--eval", "--strict", "--json", "-E", &expr]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["inputs"], serde_json::json!(["nixpkgs"]));
    assert_eq!(
        v["outputs"],
        serde_json::json!(["nixosModules", "overlays", "packages"])
    );
    let package = Path::new(REPO).join("nix/package.nix");
    for system in ["x86_64-linux", "aarch64-linux"] {
        assert_eq!(v["packages"][system]["system"], system, "{v}");
        assert_eq!(v["packages"][system]["file"], package.to_str().unwrap());
    }
    assert_eq!(v["packages"].as_object().unwrap().len(), 2, "{v}");
    assert_eq!(v["overlay"], package.to_str().unwrap());
    assert_eq!(v["module"], serde_json::json!(["config", "lib", "pkgs"]));
    assert_eq!(
        v["module_sections"],
        serde_json::json!(["config", "options"])
    );
}

#[test]
fn the_nix_package_installs_completions_and_the_man_page() {
    let text = std::fs::read_to_string(Path::new(REPO).join("nix/package.nix")).unwrap();
    for needle in [
        "installShellFiles",
        "completions bash",
        "completions zsh",
        "completions fish",
        "steward man",
        "installManPage",
    ] {
        assert!(text.contains(needle), "nix/package.nix lacks {needle:?}");
    }
}
