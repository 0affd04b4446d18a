# guildhall itself: one self-contained binary (templates and assets are compiled in).
# Used by the flake's packages and overlay: `pkgs.callPackage ./nix/package.nix { }`.
{ lib, rustPlatform }:

let
  cargoToml = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "guildhall";
  inherit (cargoToml.package) version;

  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../clippy.toml
      ../src
      ../migrations
      ../templates
      ../static
      # Cargo reads every [[bench]] and test target's path while resolving the package.
      ../benches
      ../tests
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;

  # The integration suite needs PostgreSQL, Redis and loopback networking; it runs in CI
  # (scripts/test.sh) and the VM tests exercise the built binary.
  doCheck = false;

  meta = {
    description = "Self-hosted Discord bot, web dashboard and REST API with a Minecraft RCON bridge";
    license = lib.licenses.agpl3Plus;
    mainProgram = "guildhall";
    platforms = lib.platforms.linux;
  };
}
