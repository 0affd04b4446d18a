{ pkgs, self }:
import ./common.nix {
  inherit pkgs self;
  name = "sqlite";
  extraServerConfig = {
    services.guildhall = {
      database = { type = "sqlite"; createLocally = false; };
      redis.createLocally = false;
    };
  };
  readyEngine = "sqlite";
  readyRedis = "not_configured";
  extraTestScript = ''
    with subtest("the SQLite database is private"):
        server.succeed("test $(stat -c %a /var/lib/guildhall/guildhall.db) = 600")
  '';
}
