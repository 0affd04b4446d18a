//! The real binary: configuration errors, the embedded default, the CLI, signals and secrets.

use std::io::Write;
use std::time::Duration;

use crate::common::daemon::{Daemon, http_status, run};
use crate::common::fresh_database;

#[test]
fn bad_configuration_exits_2_with_one_line_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("bad.toml");
    std::fs::write(&toml, "bind = \"127.0.0.1:8080\"\ndiscrod_token = \"x\"\n").unwrap();
    let toml = toml.display().to_string();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("DATABASE_URL", "definitely not a url")], "DATABASE_URL"),
        (&[("DATABASE_URL", "mysql://localhost/db")], "DATABASE_URL"),
        (&[("GUILDHALL_BIND", "127.0.0.1:70000")], "GUILDHALL_BIND"),
        (
            &[
                ("RCON_HOST", "mc"),
                ("RCON_PASSWORD", "x"),
                ("RCON_PORT", "99999"),
            ],
            "RCON_PORT",
        ),
        (
            &[("DISCORD_TOKEN_FILE", "/nonexistent/token")],
            "DISCORD_TOKEN_FILE",
        ),
        (
            &[("SECRET_KEY", "a"), ("SECRET_KEY_FILE", "/etc/hostname")],
            "SECRET_KEY",
        ),
        (
            &[("GUILDHALL_CONFIG", &toml)],
            "unknown key `discrod_token`",
        ),
        (&[("LOG_FORMAT", "yaml")], "LOG_FORMAT"),
        (&[("REDIS_URL", "http://localhost")], "REDIS_URL"),
        (
            &[("GUILDHALL_TRUSTED_PROXIES", "127.0.0.1,proxy.local")],
            "GUILDHALL_TRUSTED_PROXIES",
        ),
        (
            &[("GUILDHALL_METRICS_BIND", "localhost")],
            "GUILDHALL_METRICS_BIND",
        ),
        (
            &[("DISCORD_CLIENT_ID", "123456789012345678")],
            "DISCORD_CLIENT_SECRET",
        ),
    ];
    for (env, expected) in cases {
        for args in [&["check-config"][..], &["serve"][..]] {
            let out = run(dir.path(), env, args, None);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{env:?} {args:?}: {stderr}");
            assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
            assert!(stderr.contains(expected), "{env:?}: {stderr}");
            assert!(
                stderr.starts_with("guildhall: configuration error: "),
                "{stderr}"
            );
        }
    }
}

#[test]
fn check_config_prints_the_effective_configuration_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "file-token-value-1234\n").unwrap();
    let token_path = token_file.display().to_string();
    let out = run(
        dir.path(),
        &[
            ("DISCORD_TOKEN_FILE", &token_path),
            (
                "DATABASE_URL",
                "postgres://app:pg-password-999@db.internal:5432/gh",
            ),
            ("JWT_SECRET_KEY", "jwt-secret-value-0123456789abcdef0123"),
            ("RCON_HOST", "mc.local"),
            ("RCON_PASSWORD", "rcon-password-777"),
            ("REDIS_URL", "redis://:redis-password-555@127.0.0.1:6379"),
            ("DISCORD_CLIENT_ID", "123456789012345678"),
            ("DISCORD_CLIENT_SECRET_FILE", &token_path),
            ("GUILDHALL_PUBLIC_URL", "https://bot.example.org"),
        ],
        &["check-config"],
        None,
    );
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for secret in [
        "file-token-value-1234",
        "pg-password-999",
        "jwt-secret-value",
        "rcon-password-777",
        "redis-password-555",
    ] {
        assert!(!stdout.contains(secret), "{secret} leaked: {stdout}");
    }
    assert!(
        stdout.contains("DISCORD_TOKEN = *** (environment)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("DATABASE_URL = postgres://app:***@db.internal:5432/gh"),
        "{stdout}"
    );
    assert!(stdout.contains("RCON_HOST = mc.local (environment)"));
    assert!(
        stdout.contains("DISCORD_CLIENT_SECRET = *** (environment)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("redirect URI https://bot.example.org/auth/discord/callback"),
        "{stdout}"
    );
    assert!(stdout.contains("GUILDHALL_BIND = 127.0.0.1:8080 (default)"));
    assert!(
        stdout.contains("GUILDHALL_TRUSTED_PROXIES = (none"),
        "{stdout}"
    );
    assert!(
        stdout.contains("GUILDHALL_METRICS_BIND = (not set"),
        "{stdout}"
    );
}

#[actix_web::test]
async fn the_first_start_creates_data_keys_and_an_admin_and_the_next_start_reuses_them() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing but a free port: everything else is the embedded default in the working directory.
    let env = [("GUILDHALL_BIND", "127.0.0.1:0")];
    let first = Daemon::start(dir.path(), &env);
    let ready = reqwest::get(first.url("/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"]["detail"], "sqlite");
    assert_eq!(body["gateway"]["reason"], "DISCORD_TOKEN is not set");
    let (status, lines) = first.terminate();
    assert!(status.success(), "exit {status}");
    let log = lines.join("\n");
    assert!(log.contains("created the initial admin user"), "{log}");
    assert!(log.contains("password: "));
    assert!(log.contains("JWT_SECRET_KEY was not set: generated one"));

    let data = dir.path().join("data");
    assert!(data.join("guildhall.db").exists());
    for key in ["jwt_secret_key", "secret_key"] {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(data.join(key)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{key}");
    }
    let jwt_before = std::fs::read_to_string(data.join("jwt_secret_key")).unwrap();

    let second = Daemon::start(dir.path(), &env);
    let (status, lines) = second.terminate();
    assert!(status.success());
    let log = lines.join("\n");
    assert!(
        log.contains("JWT_SECRET_KEY loaded from the data directory"),
        "{log}"
    );
    assert!(
        !log.contains("created the initial admin user"),
        "admin is created once"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("jwt_secret_key")).unwrap(),
        jwt_before
    );
}

#[actix_web::test]
async fn sigterm_drains_and_exits_0_and_no_secret_reaches_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(dir.path()).await;
    let secrets = [
        ("DISCORD_TOKEN", "discord-token-SECRET-4242"),
        ("JWT_SECRET_KEY", "jwt-SECRET-0123456789abcdef0123456789"),
        ("SECRET_KEY", "app-SECRET-0123456789abcdef0123456789"),
        ("RCON_PASSWORD", "rcon-SECRET-777"),
        ("REDIS_URL", "redis://:redis-SECRET-555@127.0.0.1:1/0"),
    ];
    let mut env: Vec<(&str, &str)> = secrets.to_vec();
    env.extend([
        ("GUILDHALL_BIND", "127.0.0.1:0"),
        ("DATABASE_URL", db.url.as_str()),
        ("RCON_HOST", "127.0.0.1"),
        ("RCON_PORT", "1"),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "debug"),
    ]);
    let daemon = Daemon::start(dir.path(), &env);
    let client = reqwest::Client::new();
    for path in [
        "/health",
        "/ready",
        "/",
        "/metrics",
        "/nope",
        "/api/v1/x?token=abc",
    ] {
        client.get(daemon.url(path)).send().await.unwrap();
    }
    let (status, lines) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "graceful exit: {lines:#?}");
    let log = lines.join("\n");
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("draining the audit queue"));
    assert!(log.contains("shutdown complete"));
    assert!(
        log.contains("redis is unavailable"),
        "the bad Redis is reported: {log}"
    );
    for (name, secret) in secrets {
        let needle = secret
            .split('@')
            .next()
            .unwrap()
            .trim_start_matches("redis://:");
        assert!(!log.contains(needle), "{name} leaked into the logs");
    }
    // JSON logs: every line but the one-time admin banner is a JSON object.
    let json_lines = lines.iter().filter(|l| l.starts_with('{')).count();
    assert!(json_lines > 5);
    for line in lines.iter().filter(|l| l.starts_with('{')) {
        serde_json::from_str::<serde_json::Value>(line).expect("JSON log line");
    }
}

#[actix_web::test]
async fn migrate_and_revert_round_trip_and_user_create_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(dir.path()).await;
    let env = [("DATABASE_URL", db.url.as_str())];
    let up = run(dir.path(), &env, &["migrate"], None);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(String::from_utf8_lossy(&up.stdout).contains("migrations applied"));
    let down = run(dir.path(), &env, &["migrate", "--revert"], None);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(String::from_utf8_lossy(&down.stdout).contains("reverted migration"));
    let again = run(dir.path(), &env, &["migrate"], None);
    assert!(again.status.success());

    let create = |name: &str, role: &str, password: &str| {
        run(
            dir.path(),
            &env,
            &[
                "user",
                "create",
                "--username",
                name,
                "--role",
                role,
                "--password-stdin",
            ],
            Some(password),
        )
    };
    let ok = create("alice", "moderator", "correct horse battery staple\n");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("created user `alice`"));
    let password = String::from_utf8_lossy(&ok.stdout).contains("correct horse");
    assert!(!password, "the password is never echoed");

    let bad: &[(&str, &str, &str, i32, &str)] = &[
        (
            "bob",
            "overlord",
            "correct horse battery staple",
            2,
            "--role",
        ),
        ("bob", "viewer", "short", 2, "password"),
        ("bob", "viewer", "password1234", 2, "common"),
        (
            "b",
            "viewer",
            "correct horse battery staple",
            2,
            "--username",
        ),
        (
            "alice",
            "viewer",
            "another long password",
            1,
            "already exists",
        ),
    ];
    for (name, role, pw, code, says) in bad {
        let out = create(name, role, pw);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{name}/{role}: {stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }

    let url = guildhall::config::DatabaseUrl::parse(&db.url).unwrap();
    let store = guildhall::store::Store::connect(&url, 1).await.unwrap();
    let alice = guildhall::store::users::find_by_username(&store, "alice")
        .await
        .unwrap();
    assert_eq!(
        guildhall::store::users::global_roles(&store, alice.id)
            .await
            .unwrap(),
        vec!["moderator".to_owned()]
    );
    assert!(
        guildhall::store::users::find_by_username(&store, "bob")
            .await
            .is_err()
    );
    let entries = guildhall::store::audit::list(
        &store,
        &guildhall::store::audit::AuditFilter {
            action: Some("user.create".into()),
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].details["username"], "alice");
    assert_eq!(entries[0].details["via"], "cli");
}

#[actix_web::test]
async fn a_request_in_flight_at_sigterm_is_answered_before_exit() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[("GUILDHALL_BIND", "127.0.0.1:0")]);
    let body = r#"{"username":"nobody-here","password":"not the right password"}"#;
    let (first, rest) = body.split_at(20);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", daemon.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // The request is half received when the signal arrives.
    unsafe {
        libc::kill(daemon.child.id() as i32, libc::SIGTERM);
    }
    // The daemon handles the signal when it gets to run, a loaded machine's while later: once
    // it has, new connections are refused, and the request in flight is still answered.
    let signalled = std::time::Instant::now();
    while http_status(daemon.port, "/health").is_some() {
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "new connections are still served after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stream.write_all(rest.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(
        response.starts_with("HTTP/1.1 401"),
        "the in-flight request got its answer: {response:?}"
    );
    assert!(response.contains(r#""code":"#), "{response}");
    let (status, lines) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{lines:#?}");
}
