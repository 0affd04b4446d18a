# services.guildhall: the Discord bot, dashboard and API daemon.
#
# Secrets are only ever paths to files outside the Nix store: systemd loads them with
# LoadCredential and guildhall reads them through its `*_FILE` variables. Evaluation fails when a
# secret is given as a value, as a store path, or in `settings`.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.guildhall;
  inherit (lib) mkEnableOption mkOption mkPackageOption mkIf mkMerge mkDefault types;

  # A secret is a path to a file outside the store (checked below), never a value; unset by default.
  mkSecretFileOption = attrs: mkOption ({
    type = types.nullOr (types.either types.path types.str);
    default = null;
  } // attrs);

  settingsFormat = pkgs.formats.toml { };
  exe = lib.getExe cfg.package;
  defaultDataDir = "/var/lib/guildhall";
  dataDir = cfg.settings.data_dir;

  # The port and a loopback address of the main listener (for nginx and health checks).
  splitAddress = address:
    let
      port = lib.last (lib.splitString ":" address);
      host = lib.removeSuffix ":${port}" address;
    in
    {
      inherit port;
      loopback =
        if host == "0.0.0.0" then "127.0.0.1"
        else if host == "[::]" then "[::1]"
        else host;
    };
  listen = splitAddress cfg.settings.bind;
  appUrl = "http://${listen.loopback}:${listen.port}";
  # Prometheus's target: the dedicated metrics listener when there is one.
  metricsTarget =
    let m = splitAddress (cfg.settings.metrics_bind or cfg.settings.bind); in "${m.loopback}:${m.port}";

  checks = import ./assertions.nix { inherit lib cfg; };
  inherit (checks) secretOptions;
  credentials = lib.filterAttrs (_: s: s.file != null) secretOptions;

  localPostgres = cfg.database.type == "postgresql" && cfg.database.createLocally;
  localRedis = cfg.redis.createLocally;
  redisServer = config.services.redis.servers.guildhall;

  # What the module itself adds to the TOML file; `settings` may override none of it silently
  # (the typed options are the place for the listen address, data directory and log format).
  generatedSettings =
    lib.optionalAttrs localPostgres
      {
        # Unix socket, peer authentication as the service's own user: no password anywhere.
        database_url = "postgres:///${cfg.database.name}?host=/run/postgresql&user=${cfg.database.user}";
      }
    // lib.optionalAttrs localRedis {
      redis_url = "redis+unix://${redisServer.unixSocket}";
    }
    // lib.optionalAttrs (cfg.rcon.host != null) {
      rcon_host = cfg.rcon.host;
      rcon_port = cfg.rcon.port;
    };

  configFile = settingsFormat.generate "guildhall.toml" (generatedSettings // cfg.settings);

  # `guildhall check-config` on the rendered file at build time: an unknown key or a bad value
  # fails the build instead of the boot. Secrets are not there yet, so only the file is checked.
  checkedConfigFile =
    if cfg.checkConfig && pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform then
      pkgs.runCommand "guildhall-checked.toml" { } ''
        # The RCON password and the Discord client secret arrive as credentials at run time;
        # placeholders stand in for them.
        env -i GUILDHALL_CONFIG=${configFile} \
          ${lib.optionalString (cfg.rcon.host != null) "RCON_PASSWORD=build-time-placeholder"} \
          ${lib.optionalString (cfg.discordClientSecretFile != null) "DISCORD_CLIENT_SECRET=build-time-placeholder"} \
          ${exe} check-config >/dev/null
        cp ${configFile} $out
      ''
    else configFile;

  serviceEnvironment = {
    GUILDHALL_CONFIG = checkedConfigFile;
    RUST_LOG = cfg.logFilter;
  } // lib.mapAttrs' (name: s: lib.nameValuePair s.variable "%d/${name}") credentials;

  loadCredentials = lib.mapAttrsToList (name: s: "${name}:${toString s.file}") credentials;

  # Runs the CLI as the service does: same user, configuration, credentials and environment
  # files, through a transient unit (as nextcloud-occ runs occ as the nextcloud user). The
  # credential variables are set inside it, where $CREDENTIALS_DIRECTORY exists.
  manageInner = pkgs.writeShellScript "guildhall-manage-inner" ''
    ${lib.concatStrings (lib.mapAttrsToList (name: s: ''
      export ${s.variable}="$CREDENTIALS_DIRECTORY/${name}"
    '') credentials)}
    exec ${exe} "$@"
  '';
  manage = pkgs.writeShellScriptBin "guildhall-manage" ''
    set -euo pipefail
    if [ "$(id -u)" != 0 ]; then
      exec /run/wrappers/bin/sudo "$0" "$@"
    fi
    exec ${config.systemd.package}/bin/systemd-run --quiet --pipe --wait --collect \
      --service-type=exec \
      --property=User=${cfg.user} --property=Group=${cfg.group} \
      --property=UMask=0077 \
      --working-directory=${dataDir} \
      ${lib.concatMapStringsSep " " (c: "--property=LoadCredential=${lib.escapeShellArg c}") loadCredentials} \
      ${lib.concatMapStringsSep " " (f: "--property=EnvironmentFile=${lib.escapeShellArg (toString f)}") cfg.environmentFile} \
      --setenv=GUILDHALL_CONFIG=${checkedConfigFile} --setenv=RUST_LOG=${lib.escapeShellArg cfg.logFilter} \
      -- ${manageInner} "$@"
  '';


  # The guard for a database URL that can only come from an environment file.
  requireDatabaseUrl = pkgs.writeShellScript "guildhall-require-database-url" ''
    if [ -z "''${DATABASE_URL:-}" ] && [ -z "''${DATABASE_URL_FILE:-}" ]; then
      echo "guildhall: database.type is postgresql but no DATABASE_URL or DATABASE_URL_FILE reached the service; set database.urlFile, database.createLocally or DATABASE_URL in environmentFile" >&2
      exit 2
    fi
  '';
  databaseFromEnvironmentFile = cfg.database.type == "postgresql" && checks.databaseWays == [ ];
in
{
  options.services.guildhall = {
    enable = mkEnableOption "guildhall, the Discord bot, dashboard and API daemon";

    package = mkPackageOption pkgs "guildhall" { };

    user = mkOption {
      type = types.str;
      default = "guildhall";
      description = "System user the daemon runs as. It owns the data directory and, with database.createLocally, the PostgreSQL role and database of the same name.";
    };

    group = mkOption {
      type = types.str;
      default = "guildhall";
      description = "Group of the daemon's user.";
    };

    settings = mkOption {
      description = ''
        guildhall's configuration, written to a TOML file in the Nix store (keys as in
        docs/configuration.md). Never put a secret here: the store is readable by every local
        user, so tokens, passwords, keys and URLs with passwords are refused; use the `*File`
        options or `environmentFile`.
      '';
      default = { };
      type = types.submodule {
        freeformType = settingsFormat.type;
        options = {
          bind = mkOption {
            type = types.str;
            default = "127.0.0.1:8080";
            example = "[::1]:8080";
            description = "Address of the dashboard, API and WebSocket listener (IPv6 in brackets). Keep it on loopback behind nginx; the firewall never opens it.";
          };
          metrics_bind = mkOption {
            type = types.nullOr types.str;
            default = if cfg.monitoring.enable then "127.0.0.1:9464" else null;
            defaultText = lib.literalExpression ''if monitoring.enable then "127.0.0.1:9464" else null'';
            description = "Serve /metrics on this address only (and not on `bind`). Prometheus scrapes it; it is never opened in the firewall.";
          };
          data_dir = mkOption {
            type = types.str;
            default = defaultDataDir;
            description = "Data directory (mode 0700, owned by the service user): the SQLite database and generated signing keys. The default is a systemd StateDirectory; another path is created with the same owner and mode.";
          };
          log_format = mkOption {
            type = types.enum [ "pretty" "json" ];
            default = "json";
            description = "Log format on the journal.";
          };
          trusted_proxies = mkOption {
            type = types.listOf types.str;
            default = lib.optionals cfg.nginx.enable [ "127.0.0.1" "::1" ];
            defaultText = lib.literalExpression ''lib.optionals nginx.enable [ "127.0.0.1" "::1" ]'';
            description = "Addresses or CIDR blocks whose X-Forwarded-For/-Proto headers are believed (the client address for rate limits and the audit log). Only list proxies you run.";
          };
          shards = mkOption {
            type = types.nullOr (types.strMatching "auto|[0-9]+(-[0-9]+)?/[0-9]+");
            default = null;
            example = "0-7/16";
            description = "Discord shards this host runs (`auto`, or `first-last/total`) so that several hosts split one bot against a shared PostgreSQL and Redis.";
          };
        };
      };
      # TOML has no null: an unset optional key is left out.
      apply = lib.filterAttrsRecursive (_: v: v != null);
    };

    logFilter = mkOption {
      type = types.str;
      default = "info,sqlx=warn";
      description = "RUST_LOG filter.";
    };

    checkConfig = mkOption {
      type = types.bool;
      default = true;
      description = "Run `guildhall check-config` on the rendered settings at build time (skipped when cross-compiling).";
    };

    environmentFile = mkOption {
      type = types.coercedTo (types.either types.path types.str) lib.singleton (types.listOf (types.either types.path types.str));
      default = [ ];
      example = [ "/run/secrets/guildhall.env" ];
      description = ''
        Environment files (KEY=value lines, outside the Nix store) read by systemd: any other
        setting or secret, e.g. `DATABASE_URL` and `REDIS_URL` of a shared server when several
        hosts run one bot. A store path is refused.
      '';
    };

    discordTokenFile = mkSecretFileOption {
      example = "/run/secrets/guildhall/discord_token";
      description = "File (outside the Nix store) holding the Discord bot token. Unset: the bot is disabled and the dashboard says so.";
    };

    discordClientSecretFile = mkSecretFileOption {
      example = "/run/secrets/guildhall/discord_client_secret";
      description = ''
        File (outside the Nix store) holding the Discord application's OAuth2 client secret, for
        "Sign in with Discord". Also set `settings.discord_client_id` and `settings.public_url`
        (the redirect URI is `<public_url>/auth/discord/callback`). Unset: Discord sign-in is off
        and the sign-in page says so.
      '';
    };

    jwtSecretKeyFile = mkSecretFileOption {
      description = "File holding JWT_SECRET_KEY (32+ characters). Unset: generated once into the data directory. Set the same one on every host that shares a database.";
    };

    secretKeyFile = mkSecretFileOption {
      description = "File holding SECRET_KEY (API key HMACs, RCON password encryption). Unset: generated once into the data directory. Set the same one on every host that shares a database.";
    };

    database = {
      type = mkOption {
        type = types.enum [ "sqlite" "postgresql" ];
        default = "postgresql";
        description = "Storage engine. PostgreSQL for production and several hosts; SQLite (in the data directory) needs nothing else.";
      };
      createLocally = mkOption {
        type = types.bool;
        default = true;
        description = "With PostgreSQL: create a local database and role (ensureDatabases/ensureUsers) and connect over the Unix socket with peer authentication as the service user. No network port, no password.";
      };
      name = mkOption {
        type = types.str;
        default = cfg.user;
        defaultText = lib.literalExpression "config.services.guildhall.user";
        description = "Database name with createLocally (it must equal the role's name, which ensureDBOwnership requires).";
      };
      user = mkOption {
        type = types.str;
        default = cfg.user;
        defaultText = lib.literalExpression "config.services.guildhall.user";
        description = "Database role with createLocally; peer authentication requires it to be the service user.";
      };
      urlFile = mkSecretFileOption {
        description = "File holding DATABASE_URL of an external PostgreSQL server (it may carry a password).";
      };
    };

    redis = {
      createLocally = mkOption {
        type = types.bool;
        default = true;
        description = "Run a local Redis (services.redis.servers.guildhall) on a Unix socket only, for rate limits, caches and cross-host invalidation.";
      };
      urlFile = mkSecretFileOption {
        description = "File holding REDIS_URL of an external Redis.";
      };
    };

    rcon = {
      host = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "Host of the Minecraft server named `default` (more can be added in the dashboard).";
      };
      port = mkOption {
        type = types.port;
        default = 25575;
        description = "Its RCON port (never opened in the firewall by this module).";
      };
      passwordFile = mkSecretFileOption {
        description = "File holding its RCON password.";
      };
    };

    nginx = {
      enable = mkEnableOption "an nginx virtual host with TLS in front of guildhall";
      domain = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "guildhall.example.org";
        description = "Public name of the dashboard; the virtual host's name.";
      };
      acme = mkOption {
        type = types.bool;
        default = true;
        description = "Obtain the certificate with ACME (Let's Encrypt; needs security.acme.acceptTerms and defaults.email). Without it, set services.nginx.virtualHosts.<domain>.sslCertificate and sslCertificateKey.";
      };
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open TCP 80 and 443 for nginx (requires nginx.enable). guildhall's own port, /metrics, PostgreSQL, Redis, RCON, Prometheus and Grafana are never opened.";
    };

    monitoring = {
      enable = mkEnableOption "Prometheus (scraping guildhall on loopback, with the alert rules) and Grafana (on loopback, with the dashboards)";
      grafana = {
        port = mkOption {
          type = types.port;
          default = 3000;
          description = "Grafana's port on 127.0.0.1.";
        };
        underNginx = mkOption {
          type = types.bool;
          default = false;
          description = "Also serve Grafana at https://<nginx.domain>/grafana/.";
        };
        secretKeyFile = mkSecretFileOption {
          description = "File holding Grafana's secret key (signing), outside the store; required with monitoring.enable.";
        };
        adminPasswordFile = mkSecretFileOption {
          description = "File holding the Grafana admin password. Unset: Grafana's default, to be changed at first sign-in.";
        };
      };
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      inherit (checks) assertions warnings;

      users.users = mkIf (cfg.user == "guildhall") {
        guildhall = {
          isSystemUser = true;
          inherit (cfg) group;
          home = dataDir;
        };
      };
      users.groups = mkIf (cfg.group == "guildhall") { guildhall = { }; };

      environment.systemPackages = [ manage ];

      # A data directory other than the StateDirectory: created with the same owner and mode.
      systemd.tmpfiles.rules = lib.optional (dataDir != defaultDataDir) "d ${dataDir} 0700 ${cfg.user} ${cfg.group} - -";

      systemd.services.guildhall = {
        description = "guildhall Discord bot, dashboard and API";
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ]
          ++ lib.optional localPostgres "postgresql.target"
          ++ lib.optional localRedis "redis-guildhall.service";
        requires = lib.optional localPostgres "postgresql.target"
          ++ lib.optional localRedis "redis-guildhall.service";
        environment = serviceEnvironment;
        startLimitIntervalSec = 300;
        startLimitBurst = 5;
        serviceConfig = {
          Type = "exec";
          User = cfg.user;
          Group = cfg.group;
          WorkingDirectory = dataDir;
          ExecStartPre = lib.optional databaseFromEnvironmentFile requireDatabaseUrl
            ++ [ "${exe} migrate" ];
          ExecStart = "${exe} serve";
          LoadCredential = loadCredentials;
          EnvironmentFile = map toString cfg.environmentFile;
          Restart = "on-failure";
          RestartSec = "5s";
          # Exit code 2 is bad configuration: restarting cannot fix it.
          RestartPreventExitStatus = "2";
          TimeoutStopSec = "45s";
          UMask = "0077";
          ReadWritePaths = lib.optional (dataDir != defaultDataDir) dataDir;

          # Sandbox: `systemd-analyze security guildhall` rates it in the lowest exposure band.
          NoNewPrivileges = true;
          ProtectSystem = "strict";
          ProtectHome = true;
          PrivateTmp = true;
          PrivateDevices = true;
          PrivateUsers = true;
          PrivateMounts = true;
          PrivateIPC = true;
          ProcSubset = "pid";
          ProtectProc = "invisible";
          RemoveIPC = true;
          ProtectClock = true;
          ProtectHostname = true;
          ProtectKernelLogs = true;
          ProtectKernelModules = true;
          ProtectKernelTunables = true;
          ProtectControlGroups = true;
          RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
          RestrictNamespaces = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          CapabilityBoundingSet = "";
          AmbientCapabilities = "";
          DevicePolicy = "closed";
          SystemCallArchitectures = "native";
          SystemCallFilter = [ "@system-service" "~@privileged" "~@resources" ];
          SystemCallErrorNumber = "EPERM";
        } // lib.optionalAttrs (dataDir == defaultDataDir) {
          StateDirectory = "guildhall";
          StateDirectoryMode = "0700";
        };
      };
    }

    (mkIf localPostgres {
      services.postgresql = {
        enable = true;
        ensureDatabases = [ cfg.database.name ];
        ensureUsers = [{ name = cfg.database.user; ensureDBOwnership = true; }];
      };
    })

    (mkIf localRedis {
      services.redis.servers.guildhall = {
        enable = true;
        # Unix socket only: no TCP port at all.
        port = 0;
        # Run as the service's user, so that the socket (mode 660) is reachable without relying
        # on a supplementary group inside the service's PrivateUsers= namespace. This Redis
        # holds nothing but guildhall's shared state.
        user = cfg.user;
        unixSocketPerm = 660;
      };
    })

    (mkIf cfg.nginx.enable {
      services.nginx = {
        enable = true;
        recommendedTlsSettings = mkDefault true;
        recommendedOptimisation = mkDefault true;
        recommendedGzipSettings = mkDefault true;
        virtualHosts.${cfg.nginx.domain} = {
          enableACME = cfg.nginx.acme;
          forceSSL = true;
          extraConfig = ''
            client_max_body_size 1m;
          '';
          locations =
            let
              # The original Host is kept: the WebSocket same-origin check compares it with
              # Origin. This nginx is the edge, so X-Forwarded-For is replaced, not appended to.
              proxyHeaders = ''
                proxy_set_header Host $http_host;
                proxy_set_header X-Forwarded-For $remote_addr;
                proxy_set_header X-Forwarded-Proto $scheme;
                proxy_set_header X-Forwarded-Host "";
                proxy_set_header Forwarded "";
              '';
            in
            {
              "/" = {
                proxyPass = appUrl;
                recommendedProxySettings = false;
                extraConfig = proxyHeaders + ''
                  proxy_connect_timeout 5s;
                  proxy_send_timeout 60s;
                  proxy_read_timeout 60s;
                '';
              };
              "/ws/" = {
                proxyPass = appUrl;
                proxyWebsockets = true;
                recommendedProxySettings = false;
                extraConfig = proxyHeaders + ''
                  proxy_connect_timeout 5s;
                  # Live streams stay open; the daemon pings every 10 s.
                  proxy_read_timeout 1h;
                  proxy_send_timeout 1h;
                  proxy_buffering off;
                '';
              };
              # Metrics are for Prometheus on loopback, never for the internet.
              "= /metrics".return = "404";
            }
            // lib.optionalAttrs cfg.monitoring.grafana.underNginx {
              "/grafana/" = {
                proxyPass = "http://127.0.0.1:${toString cfg.monitoring.grafana.port}";
                proxyWebsockets = true;
                recommendedProxySettings = true;
              };
            };
        };
      };
      networking.firewall.allowedTCPPorts = lib.optionals cfg.openFirewall [ 80 443 ];
    })

    (mkIf cfg.monitoring.enable {
      services.prometheus = {
        enable = true;
        listenAddress = "127.0.0.1";
        globalConfig.scrape_interval = "15s";
        scrapeConfigs = [{
          job_name = "guildhall";
          static_configs = [{ targets = [ metricsTarget ]; }];
        }];
        ruleFiles = [ ../monitoring/prometheus/rules.yml ];
      };
      services.grafana = {
        enable = true;
        settings = {
          server = {
            http_addr = "127.0.0.1";
            http_port = cfg.monitoring.grafana.port;
          } // lib.optionalAttrs cfg.monitoring.grafana.underNginx {
            domain = cfg.nginx.domain;
            root_url = "https://${cfg.nginx.domain}/grafana/";
            serve_from_sub_path = true;
          };
          security = {
            secret_key = "$__file{${toString cfg.monitoring.grafana.secretKeyFile}}";
          } // lib.optionalAttrs (cfg.monitoring.grafana.adminPasswordFile != null) {
            admin_password = "$__file{${toString cfg.monitoring.grafana.adminPasswordFile}}";
          };
          analytics.reporting_enabled = false;
        };
        provision = {
          enable = true;
          datasources.settings.datasources = [{
            name = "Prometheus";
            uid = "prometheus";
            type = "prometheus";
            url = "http://127.0.0.1:${toString config.services.prometheus.port}";
            isDefault = true;
          }];
          dashboards.settings.providers = [{
            name = "guildhall";
            folder = "guildhall";
            options.path = ../monitoring/grafana/dashboards;
          }];
        };
      };
    })
  ]);
}
