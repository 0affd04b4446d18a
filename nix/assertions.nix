# The module's assertions and warnings, as a pure function of its option values. Kept apart from
# nix/module.nix so that they can be evaluated without nixpkgs (nix/tests/assertions.nix runs
# them with a small stand-in for `lib`); it uses only the `lib` functions that stand-in provides.
{ lib, cfg, storeDir ? builtins.storeDir }:

let
  # Credential name -> the option holding its file and the variable guildhall reads.
  secretOptions = {
    discord_token = { option = "discordTokenFile"; file = cfg.discordTokenFile; variable = "DISCORD_TOKEN_FILE"; };
    discord_client_secret = { option = "discordClientSecretFile"; file = cfg.discordClientSecretFile; variable = "DISCORD_CLIENT_SECRET_FILE"; };
    jwt_secret_key = { option = "jwtSecretKeyFile"; file = cfg.jwtSecretKeyFile; variable = "JWT_SECRET_KEY_FILE"; };
    secret_key = { option = "secretKeyFile"; file = cfg.secretKeyFile; variable = "SECRET_KEY_FILE"; };
    rcon_password = { option = "rcon.passwordFile"; file = cfg.rcon.passwordFile; variable = "RCON_PASSWORD_FILE"; };
    database_url = { option = "database.urlFile"; file = cfg.database.urlFile; variable = "DATABASE_URL_FILE"; };
    redis_url = { option = "redis.urlFile"; file = cfg.redis.urlFile; variable = "REDIS_URL_FILE"; };
  };

  grafanaFiles = lib.optionals cfg.monitoring.enable (lib.filter (f: f != null) [
    cfg.monitoring.grafana.secretKeyFile
    cfg.monitoring.grafana.adminPasswordFile
  ]);

  # A secret is an absolute path outside the store, given as a string: a Nix path literal
  # (./token) is copied into the world-readable store as soon as it is used.
  secretPathProblem = name: file:
    if builtins.isPath file then
      "services.guildhall: ${name} is a Nix path literal, which would be copied into the world-readable Nix store; give it as a string such as \"/run/secrets/guildhall/${baseNameOf (toString file)}\"."
    else if !(lib.hasPrefix "/" file) then
      "services.guildhall: ${name} must be the absolute path of a file holding the secret, not the secret itself."
    else if lib.hasPrefix "${storeDir}/" file then
      "services.guildhall: ${name} (${file}) is in the Nix store, which every local user can read; keep secrets outside it."
    else null;

  pathChecks =
    lib.mapAttrsToList (_: s: { name = s.option; inherit (s) file; })
      (lib.filterAttrs (_: s: s.file != null) secretOptions)
    ++ lib.imap1 (i: file: { name = "environmentFile (entry ${toString i})"; inherit file; }) cfg.environmentFile
    ++ map (file: { name = "a monitoring.grafana secret file"; inherit file; }) grafanaFiles;

  pathAssertions = map
    (c:
      let problem = secretPathProblem c.name c.file; in
      { assertion = problem == null; message = toString problem; })
    pathChecks;

  # Keys that must never reach the store through `settings`.
  secretSettingKeys = [ "discord_token" "discord_client_secret" "jwt_secret_key" "secret_key" "rcon_password" ];
  urlHasPassword = url:
    builtins.match "[A-Za-z0-9+.-]+://[^/@]*:[^/@]+@.*" url != null
    || builtins.match ".*[?&]password=.*" url != null;
  secretsInSettings =
    lib.filter (k: cfg.settings ? ${k}) secretSettingKeys
    ++ lib.filter (k: cfg.settings ? ${k} && urlHasPassword (toString cfg.settings.${k})) [ "database_url" "redis_url" ];
  fileKeysInSettings = lib.filter (k: cfg.settings ? "${k}_file") (lib.attrNames secretOptions);

  localPostgres = cfg.database.type == "postgresql" && cfg.database.createLocally;
  databaseWays = lib.filter (x: x) [ localPostgres (cfg.database.urlFile != null) (cfg.settings ? database_url) ];
  redisWays = lib.filter (x: x) [ cfg.redis.createLocally (cfg.redis.urlFile != null) (cfg.settings ? redis_url) ];
  bind = cfg.settings.bind;
in
{
  inherit secretOptions databaseWays redisWays;

  assertions = pathAssertions ++ [
    {
      assertion = secretsInSettings == [ ];
      message = "services.guildhall: settings.${lib.concatStringsSep ", settings." secretsInSettings} would write a secret into the world-readable Nix store; use the matching *File option or environmentFile.";
    }
    {
      assertion = fileKeysInSettings == [ ];
      message = "services.guildhall: settings.${lib.concatStringsSep "_file, settings." fileKeysInSettings}_file: use the module's *File options, which pass the file as a systemd credential.";
    }
    {
      assertion = lib.length databaseWays <= 1;
      message = "services.guildhall: the database URL is set in more than one way (database.createLocally with PostgreSQL, database.urlFile, settings.database_url); keep one.";
    }
    {
      assertion = cfg.database.type == "sqlite" || databaseWays != [ ] || cfg.environmentFile != [ ];
      message = "services.guildhall: database.type = \"postgresql\" needs database.createLocally, database.urlFile, or DATABASE_URL in an environmentFile.";
    }
    {
      assertion = cfg.database.type == "postgresql"
        || (cfg.database.urlFile == null && !(cfg.settings ? database_url && lib.hasPrefix "postgres" cfg.settings.database_url));
      message = "services.guildhall: database.type = \"sqlite\" but a PostgreSQL URL is configured; set database.type = \"postgresql\".";
    }
    {
      assertion = !localPostgres || (cfg.database.user == cfg.user && cfg.database.name == cfg.database.user);
      message = "services.guildhall: database.createLocally connects with peer authentication, so database.user must be the service user (${cfg.user}) and database.name must equal it (ensureDBOwnership); use database.urlFile for anything else.";
    }
    {
      assertion = lib.length redisWays <= 1;
      message = "services.guildhall: the Redis URL is set in more than one way (redis.createLocally, redis.urlFile, settings.redis_url); keep one.";
    }
    {
      assertion = (cfg.rcon.host == null) == (cfg.rcon.passwordFile == null);
      message = "services.guildhall: rcon.host and rcon.passwordFile go together (guildhall refuses one without the other at start).";
    }
    {
      assertion = !(cfg.settings ? rcon_host || cfg.settings ? rcon_port);
      message = "services.guildhall: set the Minecraft server with rcon.host and rcon.port, not in settings.";
    }
    {
      assertion = lib.hasPrefix "/" cfg.settings.data_dir;
      message = "services.guildhall: settings.data_dir must be an absolute path.";
    }
    {
      assertion = builtins.match "(\\[[0-9a-fA-F:.]+]|[0-9.]+|localhost):[0-9]+" bind != null;
      message = "services.guildhall: settings.bind must be IP:PORT (IPv6 in brackets, e.g. [::1]:8080).";
    }
    {
      assertion = !(cfg.settings ? metrics_bind) || cfg.settings.metrics_bind != bind;
      message = "services.guildhall: settings.metrics_bind must differ from settings.bind.";
    }
    {
      assertion = !cfg.nginx.enable || cfg.nginx.domain != null;
      message = "services.guildhall: nginx.enable needs nginx.domain.";
    }
    {
      assertion = !cfg.openFirewall || cfg.nginx.enable;
      message = "services.guildhall: openFirewall opens 80 and 443 for nginx only; enable nginx (guildhall's own port is never opened).";
    }
    {
      assertion = !cfg.monitoring.enable || cfg.monitoring.grafana.secretKeyFile != null;
      message = "services.guildhall: monitoring.enable needs monitoring.grafana.secretKeyFile (Grafana signs with it).";
    }
    {
      assertion = !cfg.monitoring.grafana.underNginx || (cfg.monitoring.enable && cfg.nginx.enable);
      message = "services.guildhall: monitoring.grafana.underNginx needs monitoring.enable and nginx.enable.";
    }
  ];

  warnings =
    lib.optional (cfg.database.type == "sqlite" && cfg.database.createLocally)
      "services.guildhall: database.type is \"sqlite\", so database.createLocally has no effect: no PostgreSQL is set up. Set database.createLocally = false to silence this."
    ++ lib.optional (cfg.nginx.enable && !(lib.hasPrefix "127." bind || lib.hasPrefix "[::1]" bind || lib.hasPrefix "localhost" bind))
      "services.guildhall: with nginx in front, settings.bind should stay on loopback (it is ${bind}).";
}
