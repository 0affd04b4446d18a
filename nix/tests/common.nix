# One NixOS VM test of the module, parameterised by storage backend (nix/tests/sqlite.nix and
# nix/tests/postgresql.nix), in the manner of nixpkgs' nixos/tests/vaultwarden.nix.
#
# `server` runs guildhall behind nginx (TLS with a throwaway self-signed certificate, since ACME
# needs the internet) with every secret as a file created inside the VM at test time, so that
# no secret value can be in the Nix store. `client` is another machine on the network: it
# reaches the dashboard through nginx and finds every other port closed.
{ pkgs, self, name, extraServerConfig ? { }, readyEngine, readyRedis, extraTestScript ? "" }:

let
  # Test-only TLS pair: a throwaway key in the store is acceptable for a VM test and is no secret
  # of guildhall's.
  tls = pkgs.runCommand "guildhall-test-tls" { nativeBuildInputs = [ pkgs.openssl ]; } ''
    mkdir $out
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=server \
      -addext subjectAltName=DNS:server -keyout $out/key.pem -out $out/cert.pem
  '';
  secretDir = "/run/secrets/guildhall";
  secretNames = [ "jwt_secret_key" "secret_key" "rcon_password" "discord_token" "grafana_secret_key" ];
in
pkgs.testers.runNixOSTest {
  name = "guildhall-${name}";

  nodes.server = { lib, ... }: {
    imports = [ self.nixosModules.default extraServerConfig ];
    virtualisation.memorySize = 2048;
    environment.systemPackages = [ pkgs.openssl pkgs.curl pkgs.jq ];
    networking.firewall.enable = true;

    services.guildhall = {
      enable = true;
      # Every interface: the client's port scan then shows that the firewall, not the bind
      # address, keeps 8080 closed.
      settings.bind = "0.0.0.0:8080";
      jwtSecretKeyFile = "${secretDir}/jwt_secret_key";
      secretKeyFile = "${secretDir}/secret_key";
      discordTokenFile = "${secretDir}/discord_token";
      rcon = { host = "127.0.0.1"; passwordFile = "${secretDir}/rcon_password"; };
      nginx = { enable = true; domain = "server"; acme = false; };
      openFirewall = true;
    };
    services.nginx.virtualHosts.server = {
      sslCertificate = "${tls}/cert.pem";
      sslCertificateKey = "${tls}/key.pem";
    };
    # Started by the test script once the secret files exist.
    systemd.services.guildhall.wantedBy = lib.mkForce [ ];
  };

  nodes.client = { ... }: {
    environment.systemPackages = [ pkgs.curl pkgs.netcat pkgs.jq ];
  };

  testScript = ''
    import json

    start_all()
    server.wait_for_unit("multi-user.target")
    client.wait_for_unit("multi-user.target")

    with subtest("secrets are files outside the store, made here"):
        server.succeed("install -d -m 0700 ${secretDir}")
        secrets = {}
        for name in ${builtins.toJSON secretNames}:
            value = server.succeed(f"openssl rand -hex 32 | tee ${secretDir}/{name}").strip()
            secrets[name] = value

    server.systemctl("start guildhall.service")
    server.wait_for_unit("guildhall.service")
    server.wait_for_open_port(8080)

    with subtest("/ready reports the engine and Redis in use"):
        # The health monitor's first checks land within a second of the start.
        server.wait_until_succeeds("curl -fsS http://127.0.0.1:8080/ready | jq -e '.status == \"ready\"'", timeout=60)
        ready = json.loads(server.succeed("curl -sS http://127.0.0.1:8080/ready"))
        assert ready["database"]["status"] == "up", ready
        assert ready["database"]["detail"] == "${readyEngine}", ready
        assert ready["redis"]["status"] == "${readyRedis}", ready

    with subtest("the data directory is private"):
        server.succeed("test $(stat -c %a /var/lib/guildhall) = 700")
        server.succeed("test -z \"$(find /var/lib/guildhall -mindepth 1 -perm /077)\"")

    with subtest("the dashboard answers through nginx with TLS, and plain HTTP redirects"):
        client.succeed("curl -fsS --cacert ${tls}/cert.pem https://server/ | grep -qi guildhall")
        client.succeed("curl -sS -o /dev/null -w '%{http_code}' http://server/ | grep -q 301")
        client.succeed("curl -sS -o /dev/null -w '%{http_code}' --cacert ${tls}/cert.pem https://server/metrics | grep -q 404")

    with subtest("only 80 and 443 answer from another machine"):
        client.succeed("nc -z -w 5 server 80")
        client.succeed("nc -z -w 5 server 443")
        for port in [8080, 9464, 5432, 6379, 25575, 9090, 3000]:
            client.fail(f"nc -z -w 3 server {port}")

    with subtest("guildhall-manage runs the CLI as the service, on its database"):
        server.succeed("echo 'an operator password 1234' | guildhall-manage user create --username ops --role admin --password-stdin")
        login = json.loads(client.succeed(
            "curl -fsS --cacert ${tls}/cert.pem -H 'content-type: application/json' "
            "-d '{\"username\":\"ops\",\"password\":\"an operator password 1234\"}' https://server/api/v1/auth/login"
        ))
        token = login["access_token"]

    with subtest("behind nginx the audit log records the client's own address"):
        client_ip = client.succeed("ip -4 -o addr show dev eth1 | awk '{print $4}' | cut -d/ -f1").strip()
        client.fail(
            "curl -fsS --cacert ${tls}/cert.pem -H 'content-type: application/json' -H 'x-forwarded-for: 6.6.6.6' "
            "-d '{\"username\":\"ops\",\"password\":\"wrong\"}' https://server/api/v1/auth/login"
        )
        page = json.loads(client.succeed(
            f"curl -fsS --cacert ${tls}/cert.pem -H 'authorization: Bearer {token}' "
            "'https://server/api/v1/audit?action=auth.login_failed'"
        ))
        assert page["entries"][0]["ip"] == client_ip, (page, client_ip)

    ${extraTestScript}

    with subtest("no secret value is anywhere in the system's store closure"):
        for name, value in secrets.items():
            server.succeed(f"! nix-store -qR /run/current-system | xargs grep -rlsF -- '{value}'")
  '';
}
