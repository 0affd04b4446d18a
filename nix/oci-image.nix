# An OCI image for operators who run containers: `nix build .#oci-image`, then
# `docker load < result` (or `podman load`). The data directory is the volume /data; secrets
# come in as files through the `*_FILE` variables (docker/podman secrets).
{ dockerTools, cacert, guildhall }:

dockerTools.buildLayeredImage {
  name = "guildhall";
  tag = guildhall.version;
  contents = [ cacert ];
  # /data owned by the unprivileged user the image runs as, private to it.
  fakeRootCommands = ''
    mkdir -p data
    chown 65534:65534 data
    chmod 0700 data
  '';
  config = {
    User = "65534:65534";
    Entrypoint = [ "${guildhall}/bin/guildhall" ];
    Cmd = [ "serve" ];
    Env = [
      "GUILDHALL_BIND=0.0.0.0:8080"
      "GUILDHALL_DATA_DIR=/data"
      "LOG_FORMAT=json"
      "SSL_CERT_FILE=${cacert}/etc/ssl/certs/ca-bundle.crt"
    ];
    ExposedPorts = { "8080/tcp" = { }; };
    Volumes = { "/data" = { }; };
    WorkingDir = "/data";
  };
}
