# steward as a Nix package. Used by the module's default `services.steward.package`:
#   pkgs.callPackage ./package.nix { }
{ lib, rustPlatform }:

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

  meta = {
    description = "Turns triggers into scoped, recorded, validated Claude Code runs";
    license = lib.licenses.asl20;
    mainProgram = "steward";
    platforms = lib.platforms.linux;
  };
}
