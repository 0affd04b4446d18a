{
  description = "guildhall: a self-hosted Discord bot and dashboard daemon with a Minecraft RCON bridge";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: rec {
        guildhall = pkgs.rustPlatform.buildRustPackage {
          pname = "guildhall";
          version = (lib.importTOML ./Cargo.toml).package.version;
          src = lib.fileset.toSource {
            root = ./.;
            fileset = lib.fileset.unions [
              ./Cargo.toml
              ./Cargo.lock
              ./src
              ./migrations
              ./templates
              ./static
              ./benches
              ./tests
              ./clippy.toml
            ];
          };
          cargoLock.lockFile = ./Cargo.lock;
          # The integration suite needs PostgreSQL and Redis; it runs in the VM checks and CI.
          doCheck = false;
          meta = {
            description = "Self-hosted Discord bot and dashboard daemon";
            license = lib.licenses.agpl3Plus;
            mainProgram = "guildhall";
            platforms = lib.platforms.linux;
          };
        };
        default = guildhall;
      });

      nixosModules.default = { pkgs, ... }: {
        imports = [ ./nix/module.nix ];
        services.guildhall.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      };
      nixosModules.guildhall = self.nixosModules.default;

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [ cargo rustc clippy rustfmt rust-analyzer postgresql redis chromium chromedriver ];
        };
      });

      # One VM test per storage backend, as nixpkgs does for comparable services.
      checks = forAllSystems (pkgs:
        let
          vmTest = name: extraConfig: pkgs.testers.runNixOSTest {
            inherit name;
            nodes.machine = { ... }: {
              imports = [ self.nixosModules.default ];
              services.guildhall = { enable = true; openFirewall = true; } // extraConfig;
            };
            testScript = ''
              machine.wait_for_unit("guildhall.service")
              machine.wait_for_open_port(8080)
              machine.succeed("curl -fsS http://127.0.0.1:8080/health")
              machine.succeed("curl -fsS http://127.0.0.1:8080/ready | grep -q '\"status\":\"ready\"'")
              machine.succeed("test \"$(stat -c %a /var/lib/guildhall/secret_key)\" = 600")
              machine.fail("grep -r guildhall /nix/store/*-guildhall*.toml | grep -i secret")
            '';
          };
        in
        lib.optionalAttrs (pkgs.stdenv.hostPlatform.system == "x86_64-linux") {
          vm-sqlite = vmTest "guildhall-sqlite" { };
          vm-postgresql = vmTest "guildhall-postgresql" {
            database.type = "postgresql";
            database.createLocally = true;
            redis.createLocally = true;
          };
        });
    };
}
