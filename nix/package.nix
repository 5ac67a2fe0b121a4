# steward as a Nix package. Used by the module's default `services.steward.package`:
#   pkgs.callPackage ./package.nix { }
{ lib, stdenv, rustPlatform, installShellFiles }:

let
  root = ../.;
  # Only what the build reads: a change to docs, tests' fixtures or the nix files themselves does
  # not rebuild steward. goals/, context/ and knowledge/ are compiled into the binary.
  keep = [ "Cargo.toml" "Cargo.lock" "src" "goals" "context" "knowledge" "examples" ];
  src = lib.cleanSourceWith {
    src = lib.cleanSource root;
    filter = path: type:
      let rel = lib.removePrefix (toString root + "/") (toString path);
      in lib.any (k: rel == k || lib.hasPrefix (k + "/") rel) keep;
  };
in
rustPlatform.buildRustPackage {
  pname = "steward";
  version = (lib.importTOML ../Cargo.toml).package.version;
  inherit src;
  cargoLock.lockFile = ../Cargo.lock;

  # The integration tests drive a pinned Claude Code CLI, systemd-analyze and podman that the Nix
  # sandbox does not have; the library's unit tests run.
  cargoTestFlags = [ "--lib" ];

  # Completions and the man page come from the built binary (`steward completions SHELL`,
  # `steward man`), so they match its commands; skipped when cross-compiling (it cannot run).
  nativeBuildInputs = [ installShellFiles ];
  postInstall = lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
    installShellCompletion --cmd steward \
      --bash <($out/bin/steward completions bash) \
      --zsh <($out/bin/steward completions zsh) \
      --fish <($out/bin/steward completions fish)
    $out/bin/steward man > steward.1
    installManPage steward.1
  '';

  meta = {
    description = "Turns triggers into scoped, recorded, validated Claude Code runs";
    license = lib.licenses.asl20;
    mainProgram = "steward";
    platforms = lib.platforms.linux;
  };
}
