{ pkgs, self }:
import ./common.nix {
  inherit pkgs self;
  name = "postgresql";
  # The defaults: a local PostgreSQL (peer authentication over the socket) and a local Redis on
  # a Unix socket; with monitoring on loopback.
  extraServerConfig = { lib, ... }: {
    services.guildhall.monitoring = {
      enable = true;
      grafana.secretKeyFile = "/run/secrets/guildhall/grafana_secret_key";
    };
    # Started by the test script once its secret file exists.
    systemd.services.grafana.wantedBy = lib.mkForce [ ];
  };
  readyEngine = "postgres";
  readyRedis = "up";
  extraTestScript = ''
    with subtest("PostgreSQL and Redis listen on Unix sockets only"):
        server.succeed("test -S /run/postgresql/.s.PGSQL.5432")
        server.succeed("test -S /run/redis-guildhall/redis.sock")
        server.fail("ss -ltnH | grep -q ':6379 '")

    with subtest("Prometheus scrapes guildhall's metrics listener; Grafana serves the dashboards"):
        server.wait_until_succeeds(
            "curl -fsS http://127.0.0.1:9090/api/v1/targets | jq -e '.data.activeTargets[] | select(.labels.job == \"guildhall\" and .health == \"up\")'",
            timeout=120,
        )
        server.succeed("curl -fsS http://127.0.0.1:9090/api/v1/rules | jq -e '.data.groups[].rules[] | select(.name == \"GuildhallDown\")'")
        server.fail("curl -fsS http://127.0.0.1:8080/metrics")
        server.systemctl("start grafana.service")
        server.wait_for_open_port(3000)
        server.wait_until_succeeds("curl -fsS -u admin:admin http://127.0.0.1:3000/api/search?query=guildhall | jq -e 'length >= 2'", timeout=120)
  '';
}
