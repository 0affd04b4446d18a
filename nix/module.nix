# NixOS module for guildhall. Secrets are passed as paths to files outside the Nix store
# (loaded with systemd's LoadCredential) or through `environmentFile`; nothing secret is ever
# written into the store.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.guildhall;
  inherit (lib) mkEnableOption mkOption mkIf mkPackageOption types optionalAttrs;

  settingsFormat = pkgs.formats.toml { };

  # Secret name -> the option holding the path of the file that contains it.
  credentialFiles = lib.filterAttrs (_: path: path != null) {
    discord_token = cfg.discordTokenFile;
    jwt_secret_key = cfg.jwtSecretKeyFile;
    secret_key = cfg.secretKeyFile;
    rcon_password = cfg.rcon.passwordFile;
    database_url = cfg.database.urlFile;
    redis_url = cfg.redis.urlFile;
  };

  databaseUrl =
    if cfg.database.type == "sqlite" then "sqlite://${cfg.dataDir}/guildhall.db"
    else if cfg.database.createLocally then "postgres:///${cfg.database.name}?host=/run/postgresql&user=${cfg.database.user}"
    else null;

  redisUrl =
    if cfg.redis.createLocally then "redis+unix://${config.services.redis.servers.guildhall.unixSocket}"
    else null;

  configFile = settingsFormat.generate "guildhall.toml" (
    {
      bind = "${cfg.listen.address}:${toString cfg.listen.port}";
      data_dir = cfg.dataDir;
      log_format = cfg.logFormat;
    }
    // optionalAttrs (cfg.rcon.host != null) {
      rcon_host = cfg.rcon.host;
      rcon_port = cfg.rcon.port;
    }
    // cfg.settings
  );
in
{
  options.services.guildhall = {
    enable = mkEnableOption "guildhall, the Discord bot and dashboard daemon";

    package = mkPackageOption pkgs "guildhall" { };

    listen = {
      address = mkOption {
        type = types.str;
        default = "127.0.0.1";
        description = "Address the dashboard and API listen on. Use 0.0.0.0 (with openFirewall) to serve other hosts.";
      };
      port = mkOption {
        type = types.port;
        default = 8080;
        description = "Port of the dashboard, the API, /health, /ready and /metrics.";
      };
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the listen port in the firewall.";
    };

    metricsAllowedFrom = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "10.0.0.5" ];
      description = ''
        Source addresses allowed to reach the listen port when openFirewall is false, e.g. a
        Prometheus server. Each becomes an nftables/iptables accept rule for that address only.
      '';
    };

    dataDir = mkOption {
      type = types.str;
      default = "/var/lib/guildhall";
      description = "State directory: the SQLite database and generated keys (mode 0600).";
    };

    logFormat = mkOption {
      type = types.enum [ "pretty" "json" ];
      default = "json";
      description = "Log format on the journal.";
    };

    logFilter = mkOption {
      type = types.str;
      default = "info,sqlx=warn";
      description = "RUST_LOG filter.";
    };

    discordTokenFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/guildhall/discord_token";
      description = "Path (outside the Nix store) of a file holding the Discord bot token. Without it the bot is disabled and the dashboard says so.";
    };

    jwtSecretKeyFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "Path of a file holding JWT_SECRET_KEY. Unset: generated once into dataDir. Set it when several instances share a database.";
    };

    secretKeyFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "Path of a file holding SECRET_KEY (API key HMACs, RCON password encryption). Unset: generated once into dataDir.";
    };

    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "Path of an environment file (KEY=value lines) read by systemd, for any other setting or secret.";
    };

    database = {
      type = mkOption {
        type = types.enum [ "sqlite" "postgresql" ];
        default = "sqlite";
        description = "Storage engine. SQLite needs no setup; PostgreSQL is for production and several instances.";
      };
      createLocally = mkOption {
        type = types.bool;
        default = false;
        description = "Create a local PostgreSQL database and role and connect over the Unix socket (peer authentication, no password).";
      };
      name = mkOption { type = types.str; default = "guildhall"; description = "Database name when createLocally is set."; };
      user = mkOption { type = types.str; default = "guildhall"; description = "Database role when createLocally is set."; };
      urlFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "Path of a file holding DATABASE_URL for an external PostgreSQL server.";
      };
    };

    redis = {
      createLocally = mkOption {
        type = types.bool;
        default = false;
        description = "Run a local Redis (Unix socket only) for rate limits and caches.";
      };
      urlFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "Path of a file holding REDIS_URL for an external Redis.";
      };
    };

    rcon = {
      host = mkOption { type = types.nullOr types.str; default = null; description = "Host of the Minecraft server named `default`."; };
      port = mkOption { type = types.port; default = 25575; description = "Its RCON port."; };
      passwordFile = mkOption { type = types.nullOr types.str; default = null; description = "Path of a file holding its RCON password."; };
    };

    settings = mkOption {
      type = settingsFormat.type;
      default = { };
      example = { rate_limit_per_minute = 1200; };
      description = "Further non-secret settings written to the TOML file (keys as in docs/configuration.md).";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.database.type == "sqlite" || cfg.database.createLocally || cfg.database.urlFile != null;
        message = "services.guildhall: PostgreSQL needs database.createLocally or database.urlFile.";
      }
      {
        assertion = !(cfg.database.createLocally && cfg.database.urlFile != null);
        message = "services.guildhall: set either database.createLocally or database.urlFile, not both.";
      }
      {
        assertion = cfg.rcon.host == null || cfg.rcon.passwordFile != null;
        message = "services.guildhall: rcon.host needs rcon.passwordFile.";
      }
    ] ++ map (path: {
      assertion = !(lib.hasPrefix builtins.storeDir path);
      message = "services.guildhall: ${path} is in the Nix store, where every user can read it; keep secrets outside it.";
    }) (lib.attrValues credentialFiles);

    services.postgresql = mkIf (cfg.database.type == "postgresql" && cfg.database.createLocally) {
      enable = true;
      ensureDatabases = [ cfg.database.name ];
      ensureUsers = [{ name = cfg.database.user; ensureDBOwnership = true; }];
    };

    services.redis.servers.guildhall = mkIf cfg.redis.createLocally {
      enable = true;
      port = 0;
      user = "guildhall";
    };

    users.users.guildhall = {
      isSystemUser = true;
      group = "guildhall";
      home = cfg.dataDir;
    };
    users.groups.guildhall = { };

    networking.firewall = {
      allowedTCPPorts = lib.optional cfg.openFirewall cfg.listen.port;
      extraCommands = lib.concatMapStrings (addr: ''
        iptables -A nixos-fw -p tcp -s ${addr} --dport ${toString cfg.listen.port} -j nixos-fw-accept
      '') cfg.metricsAllowedFrom;
    };

    systemd.services.guildhall = {
      description = "guildhall Discord bot and dashboard";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ]
        ++ lib.optional (cfg.database.type == "postgresql" && cfg.database.createLocally) "postgresql.service"
        ++ lib.optional cfg.redis.createLocally "redis-guildhall.service";
      wants = [ "network-online.target" ];
      requires = lib.optional (cfg.database.type == "postgresql" && cfg.database.createLocally) "postgresql.service";

      environment = {
        GUILDHALL_CONFIG = "${configFile}";
        RUST_LOG = cfg.logFilter;
      }
      // optionalAttrs (databaseUrl != null && cfg.database.urlFile == null) { DATABASE_URL = databaseUrl; }
      // optionalAttrs (redisUrl != null) { REDIS_URL = redisUrl; }
      # Secrets reach the process as files in $CREDENTIALS_DIRECTORY, never as store paths.
      // lib.mapAttrs' (name: _: lib.nameValuePair "${lib.toUpper name}_FILE" "%d/${name}") credentialFiles;

      serviceConfig = {
        ExecStart = "${lib.getExe cfg.package} serve";
        User = "guildhall";
        Group = "guildhall";
        StateDirectory = lib.mkIf (cfg.dataDir == "/var/lib/guildhall") "guildhall";
        StateDirectoryMode = "0700";
        WorkingDirectory = cfg.dataDir;
        LoadCredential = lib.mapAttrsToList (name: path: "${name}:${path}") credentialFiles;
        EnvironmentFile = lib.mkIf (cfg.environmentFile != null) cfg.environmentFile;
        Restart = "on-failure";
        RestartSec = "5s";
        # Exit code 2 is bad configuration: restarting cannot fix it.
        RestartPreventExitStatus = "2";
        TimeoutStopSec = "45s";
        UMask = "0077";

        # Hardening
        NoNewPrivileges = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectKernelLogs = true;
        ProtectKernelModules = true;
        ProtectKernelTunables = true;
        ProtectControlGroups = true;
        ProtectProc = "invisible";
        ReadWritePaths = [ cfg.dataDir ];
        RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        CapabilityBoundingSet = "";
        AmbientCapabilities = "";
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" "~@privileged" "~@resources" ];
        DevicePolicy = "closed";
      };
    };
  };
}
