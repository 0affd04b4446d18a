# Evaluates nix/assertions.nix without nixpkgs: `lib` is a small stand-in built on builtins,
# enough for the functions that file uses. Run by scripts/deploy-checks.sh:
#   nix-instantiate --eval --strict nix/tests/assertions.nix
# evaluates to the list of cases that went wrong, so `[ ]` is a pass.
let
  lib = rec {
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    inherit (builtins) filter length attrNames concatStringsSep;
    hasPrefix = prefix: s: builtins.substring 0 (builtins.stringLength prefix) s == prefix;
    mapAttrsToList = f: attrs: map (n: f n attrs.${n}) (attrNames attrs);
    filterAttrs = pred: attrs:
      builtins.listToAttrs (map (n: { name = n; value = attrs.${n}; })
        (filter (n: pred n attrs.${n}) (attrNames attrs)));
    imap1 = f: list: builtins.genList (i: f (i + 1) (builtins.elemAt list i)) (length list);
  };

  recursiveUpdate = a: b:
    a // builtins.mapAttrs
      (n: v: if builtins.isAttrs v && a ? ${n} && builtins.isAttrs a.${n} then recursiveUpdate a.${n} v else v)
      b;

  # The option defaults of nix/module.nix.
  defaults = {
    user = "guildhall";
    settings = { bind = "127.0.0.1:8080"; data_dir = "/var/lib/guildhall"; log_format = "json"; trusted_proxies = [ ]; };
    environmentFile = [ ];
    discordTokenFile = null;
    discordClientSecretFile = null;
    jwtSecretKeyFile = null;
    secretKeyFile = null;
    database = { type = "postgresql"; createLocally = true; name = "guildhall"; user = "guildhall"; urlFile = null; };
    redis = { createLocally = true; urlFile = null; };
    rcon = { host = null; port = 25575; passwordFile = null; };
    nginx = { enable = false; domain = null; acme = true; };
    openFirewall = false;
    monitoring = { enable = false; grafana = { underNginx = false; secretKeyFile = null; adminPasswordFile = null; }; };
  };

  evaluate = overrides:
    import ../assertions.nix { inherit lib; cfg = recursiveUpdate defaults overrides; storeDir = "/nix/store"; };

  failed = result: map (a: a.message) (builtins.filter (a: !a.assertion) result.assertions);

  contains = needle: haystack: builtins.match ".*${needle}.*" haystack != null;

  # name -> { overrides; refused = a fragment of the one expected message (null: accepted);
  #           warns = a fragment of an expected warning (optional) }
  cases = {
    defaults-are-accepted = { overrides = { }; refused = null; };
    a-complete-production-configuration-is-accepted = {
      overrides = {
        discordTokenFile = "/run/secrets/guildhall/discord_token";
        discordClientSecretFile = "/run/secrets/guildhall/discord_client_secret";
        jwtSecretKeyFile = "/run/secrets/guildhall/jwt";
        rcon = { host = "127.0.0.1"; passwordFile = "/run/secrets/guildhall/rcon"; };
        nginx = { enable = true; domain = "guildhall.example.org"; };
        openFirewall = true;
        monitoring = { enable = true; grafana = { secretKeyFile = "/run/secrets/grafana"; underNginx = true; }; };
        settings = { metrics_bind = "127.0.0.1:9464"; shards = "0-3/8"; bind = "[::1]:8080"; };
        environmentFile = [ "/run/secrets/guildhall.env" ];
      };
      refused = null;
    };
    a-token-given-as-a-value-is-refused = { overrides.discordTokenFile = "MTIz.abc.def"; refused = "discordTokenFile must be the absolute path"; };
    a-token-in-the-store-is-refused = { overrides.discordTokenFile = "/nix/store/abc-token"; refused = "discordTokenFile.*is in the Nix store"; };
    a-token-as-a-path-literal-is-refused = { overrides.discordTokenFile = ./assertions.nix; refused = "discordTokenFile is a Nix path literal"; };
    an-rcon-password-in-the-store-is-refused = {
      overrides.rcon = { host = "mc"; passwordFile = "/nix/store/x-rcon"; };
      refused = "rcon.passwordFile.*Nix store";
    };
    an-environment-file-in-the-store-is-refused = { overrides.environmentFile = [ "/etc/ok.env" "/nix/store/y-env" ]; refused = "environmentFile \\(entry 2\\)"; };
    a-grafana-key-in-the-store-is-refused = {
      overrides.monitoring = { enable = true; grafana.secretKeyFile = "/nix/store/z-grafana"; };
      refused = "grafana secret file";
    };
    a-token-in-settings-is-refused = { overrides.settings.discord_token = "MTIz"; refused = "settings.discord_token would write a secret"; };
    a-discord-client-secret-in-the-store-is-refused = { overrides.discordClientSecretFile = "/nix/store/abc-secret"; refused = "discordClientSecretFile.*is in the Nix store"; };
    a-discord-client-secret-in-settings-is-refused = { overrides.settings.discord_client_secret = "x"; refused = "settings.discord_client_secret would write a secret"; };
    a-secret-key-in-settings-is-refused = { overrides.settings.secret_key = "x"; refused = "settings.secret_key would write a secret"; };
    a-database-url-with-a-password-in-settings-is-refused = {
      overrides = { database.createLocally = false; settings.database_url = "postgres://app:hunter2@db/gh"; };
      refused = "settings.database_url would write a secret";
    };
    a-database-url-with-a-password-parameter-is-refused = {
      overrides = { database.createLocally = false; settings.database_url = "postgres://db/gh?user=app&password=hunter2"; };
      refused = "settings.database_url would write a secret";
    };
    a-redis-url-with-a-password-in-settings-is-refused = {
      overrides = { redis.createLocally = false; settings.redis_url = "redis://:hunter2@cache:6379"; };
      refused = "settings.redis_url would write a secret";
    };
    a-database-url-without-a-password-in-settings-is-accepted = {
      overrides = { database.createLocally = false; settings.database_url = "postgres:///gh?host=/run/postgresql"; };
      refused = null;
    };
    a-secret-file-key-in-settings-is-refused = { overrides.settings.discord_token_file = "/run/t"; refused = "settings.discord_token_file"; };
    two-database-urls-are-refused = { overrides.database.urlFile = "/run/secrets/db"; refused = "database URL is set in more than one way"; };
    two-redis-urls-are-refused = { overrides.settings.redis_url = "redis://cache:6379"; refused = "Redis URL is set in more than one way"; };
    postgresql-without-any-url-is-refused = { overrides.database.createLocally = false; refused = "needs database.createLocally, database.urlFile"; };
    postgresql-from-an-environment-file-is-accepted = {
      overrides = { database.createLocally = false; redis.createLocally = false; environmentFile = [ "/run/secrets/scale-out.env" ]; };
      refused = null;
    };
    sqlite-with-a-postgresql-url-is-refused = {
      overrides.database = { type = "sqlite"; createLocally = false; urlFile = "/run/secrets/db"; };
      refused = "database.type = \"sqlite\" but a PostgreSQL URL";
    };
    sqlite-with-create-locally-warns-that-no-postgresql-is-used = {
      overrides.database.type = "sqlite";
      refused = null;
      warns = "no PostgreSQL is set up";
    };
    another-database-role-is-refused-with-peer-authentication = { overrides.database.user = "app"; refused = "peer authentication"; };
    another-database-name-is-refused-with-ensure-db-ownership = { overrides.database.name = "gh"; refused = "ensureDBOwnership"; };
    an-rcon-host-without-a-password-is-refused = { overrides.rcon.host = "mc"; refused = "rcon.host and rcon.passwordFile go together"; };
    an-rcon-password-without-a-host-is-refused = { overrides.rcon.passwordFile = "/run/secrets/rcon"; refused = "rcon.host and rcon.passwordFile go together"; };
    rcon-in-settings-is-refused = { overrides.settings.rcon_host = "mc"; refused = "rcon.host and rcon.port, not in settings"; };
    a-relative-data-directory-is-refused = { overrides.settings.data_dir = "data"; refused = "data_dir must be an absolute path"; };
    a-bind-without-a-port-is-refused = { overrides.settings.bind = "::1"; refused = "settings.bind must be IP:PORT"; };
    an-unbracketed-ipv6-bind-is-refused = { overrides.settings.bind = "::1:8080"; refused = "settings.bind must be IP:PORT"; };
    metrics-on-the-main-listener-address-are-refused = { overrides.settings.metrics_bind = "127.0.0.1:8080"; refused = "metrics_bind must differ"; };
    nginx-without-a-domain-is-refused = { overrides.nginx.enable = true; refused = "nginx.enable needs nginx.domain"; };
    opening-the-firewall-without-nginx-is-refused = { overrides.openFirewall = true; refused = "openFirewall opens 80 and 443 for nginx only"; };
    monitoring-without-a-grafana-key-is-refused = { overrides.monitoring.enable = true; refused = "needs monitoring.grafana.secretKeyFile"; };
    grafana-under-nginx-without-nginx-is-refused = {
      overrides.monitoring = { enable = true; grafana = { underNginx = true; secretKeyFile = "/run/g"; }; };
      refused = "underNginx needs monitoring.enable and nginx.enable";
    };
    nginx-in-front-of-a-public-listener-warns = {
      overrides = { nginx = { enable = true; domain = "x.example"; }; settings.bind = "0.0.0.0:8080"; };
      refused = null;
      warns = "should stay on loopback";
    };
  };

  check = name: case:
    let
      result = evaluate case.overrides;
      messages = failed result;
      refusedOk =
        if case.refused == null then messages == [ ]
        else builtins.length messages == 1 && contains case.refused (builtins.head messages);
      warnsOk =
        if case ? warns then builtins.any (contains case.warns) result.warnings
        else result.warnings == [ ];
    in
    if refusedOk && warnsOk then [ ]
    else [ "${name}: refused by ${builtins.toJSON messages}; warnings ${builtins.toJSON result.warnings}" ];
in
builtins.concatLists (map (name: check name cases.${name}) (builtins.attrNames cases))
