{
  description = "guildhall: a self-hosted Discord bot and dashboard daemon with a Minecraft RCON bridge";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f (import nixpkgs {
        inherit system;
        overlays = [ self.overlays.default ];
      }));
    in
    {
      # pkgs.guildhall, for configurations that import the module on its own.
      overlays.default = final: _prev: {
        guildhall = final.callPackage ./nix/package.nix { };
      };

      packages = forAllSystems (pkgs: {
        default = pkgs.guildhall;
        inherit (pkgs) guildhall;
        oci-image = pkgs.callPackage ./nix/oci-image.nix { };
      });

      # The module with the overlay, so that services.guildhall.package defaults to this flake's
      # build; nix/module.nix alone works with any pkgs that has `guildhall`.
      nixosModules.default = {
        imports = [ ./nix/module.nix ];
        nixpkgs.overlays = [ self.overlays.default ];
      };
      nixosModules.guildhall = self.nixosModules.default;

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ pkgs.guildhall ];
          packages = with pkgs; [
            cargo
            rustc
            clippy
            rustfmt
            rust-analyzer
            postgresql
            redis
            nginx
            prometheus
            nixpkgs-fmt
            deadnix
            statix
          ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixpkgs-fmt);

      checks = forAllSystems (pkgs:
        {
          package = pkgs.guildhall;
          # The module's assertions, evaluated with a stand-in lib (also run by scripts/deploy-checks.sh).
          module-assertions = pkgs.runCommand "guildhall-module-assertions" { nativeBuildInputs = [ pkgs.nix ]; } ''
            export NIX_STATE_DIR=$TMPDIR/nix NIX_CONFIG="build-users-group ="
            result=$(nix-instantiate --eval --strict ${./nix/tests/assertions.nix})
            [ "$result" = "[ ]" ] || { echo "$result"; exit 1; }
            touch $out
          '';
          format = pkgs.runCommand "guildhall-nix-format" { nativeBuildInputs = [ pkgs.nixpkgs-fmt pkgs.deadnix ]; } ''
            cd ${./.}
            nixpkgs-fmt --check flake.nix nix
            deadnix --fail flake.nix nix
            touch $out
          '';
        }
        # One VM test per storage backend, as nixpkgs does for comparable services.
        // lib.optionalAttrs (pkgs.stdenv.hostPlatform.system == "x86_64-linux") {
          vm-sqlite = import ./nix/tests/sqlite.nix { inherit pkgs self; };
          vm-postgresql = import ./nix/tests/postgresql.nix { inherit pkgs self; };
        });
    };
}
