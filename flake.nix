# steward as a flake: the package, the NixOS module and an overlay, for x86_64-linux and
# aarch64-linux. The files it exposes are the ones a non-flake user imports directly
# (nix/package.nix, nix/module.nix). No flake.lock is committed: it cannot be made without
# network access where steward is developed; `nix flake lock` (or the first build) writes one.
#
#   inputs.steward.url = "github:OWNER/steward";
#   inputs.steward.inputs.nixpkgs.follows = "nixpkgs";
#   nixosConfigurations.HOST = nixpkgs.lib.nixosSystem {
#     modules = [ steward.nixosModules.default { services.steward.enable = true; } ];
#   };
{
  description = "steward: turns triggers into scoped, recorded, validated Claude Code runs";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      # genAttrs without nixpkgs.lib: the outputs' shape is evaluated in tests with stub inputs.
      forAllSystems = f: builtins.listToAttrs (map
        (system: { name = system; value = f nixpkgs.legacyPackages.${system}; })
        systems);
    in
    {
      packages = forAllSystems (pkgs: rec {
        steward = pkgs.callPackage ./nix/package.nix { };
        default = steward;
      });

      # `pkgs.steward` for configurations that build their packages from one nixpkgs.
      overlays.default = final: _prev: {
        steward = final.callPackage ./nix/package.nix { };
      };

      # The module's `services.steward.package` defaults to `pkgs.callPackage ./package.nix { }`:
      # built with the host's own nixpkgs.
      nixosModules.default = import ./nix/module.nix;
      nixosModules.steward = self.nixosModules.default;
    };
}
