//! Accounts and credentials for tests: users with roles (global or per guild), access tokens,
//! API keys. Users share one password whose argon2 hash is computed once per test process.

use std::sync::OnceLock;

use guildhall::auth::tokens::{self, Extra, TokenType};
use guildhall::store::users;
use secrecy::SecretString;
use serde_json::Value;

use super::{TestApp, random_suffix};

pub const PASSWORD: &str = "correct horse battery staple";

fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        guildhall::auth::password::hash(&SecretString::from(PASSWORD)).expect("hash")
    })
}

/// A user (password [`PASSWORD`]) with `roles`: `(role name, guild id)`, guild 0 = global.
pub async fn create_user(app: &TestApp, prefix: &str, roles: &[(&str, i64)]) -> (i64, String) {
    let username = format!("{prefix}_{}", &random_suffix()[..8]);
    let hash = password_hash().to_owned();
    let user = users::create(&app.state.store, &username, &hash, None)
        .await
        .expect("create user");
    for (role, guild) in roles {
        grant(app, user.id, role, *guild).await;
    }
    (user.id, username)
}

pub async fn grant(app: &TestApp, user_id: i64, role: &str, guild_id: i64) {
    sqlx::query(
        "INSERT INTO role_grants (user_id, role_id, guild_id, created_at) \
         SELECT $1, id, $3, 0 FROM roles WHERE name = $2",
    )
    .bind(user_id)
    .bind(role)
    .bind(guild_id)
    .execute(app.state.store.pool())
    .await
    .expect("grant role");
}

/// An access token for a user, minted directly (no sign-in round trip).
pub fn access_token(app: &TestApp, user_id: i64) -> String {
    tokens::issue(
        &app.state.secrets.jwt_secret_key,
        TokenType::Access,
        user_id,
        0,
        tokens::ACCESS_TTL,
        Extra::default(),
    )
    .expect("token")
    .0
}

/// A fresh user holding `role` (globally when `guild` is 0) and its access token.
pub async fn token_with_role(app: &TestApp, role: &str, guild: i64) -> String {
    let (id, _) = create_user(app, role, &[(role, guild)]).await;
    access_token(app, id)
}

pub async fn admin_token(app: &TestApp) -> String {
    token_with_role(app, "admin", 0).await
}

impl TestApp {
    /// Sends `method path` with an optional bearer token and JSON body; returns status and
    /// body (JSON, or `Null` when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let response = self.send(method, path, token, body).await;
        let status = response.status();
        let text = response.text().await.expect("body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request")
    }

    /// `GET /api/v1/auth/me` with `token` (an access token, or whatever is to be refused as one).
    pub async fn me(&self, token: Option<&str>) -> (reqwest::StatusCode, Value) {
        self.call("GET", "/api/v1/auth/me", token, None).await
    }

    /// `POST /api/v1/auth/refresh` with `refresh_token` (a session's, or whatever is to be
    /// refused as one).
    pub async fn refresh(
        &self,
        refresh_token: impl serde::Serialize,
    ) -> (reqwest::StatusCode, Value) {
        let body = serde_json::json!({ "refresh_token": refresh_token });
        self.call("POST", "/api/v1/auth/refresh", None, Some(body))
            .await
    }

    /// What a session (the body of a sign-in) gets now: the status of `GET /api/v1/auth/me`
    /// with its access token, then that of a refresh with its refresh token.
    pub async fn session_statuses(
        &self,
        session: &Value,
    ) -> (reqwest::StatusCode, reqwest::StatusCode) {
        let access = session["access_token"]
            .as_str()
            .expect("a session's access token");
        let refresh = session["refresh_token"]
            .as_str()
            .expect("a session's refresh token");
        let (me, _) = self.me(Some(access)).await;
        let (refresh, _) = self.refresh(refresh).await;
        (me, refresh)
    }

    /// `POST /api/v1/roles` as `token`: creates the role `body` describes.
    pub async fn create_role(&self, token: &str, body: Value) -> (reqwest::StatusCode, Value) {
        self.call("POST", "/api/v1/roles", Some(token), Some(body))
            .await
    }

    /// `PATCH /api/v1/users/{user}` as `token` with `body`.
    pub async fn patch_user(
        &self,
        token: &str,
        user: impl std::fmt::Display,
        body: Value,
    ) -> (reqwest::StatusCode, Value) {
        let path = format!("/api/v1/users/{user}");
        self.call("PATCH", &path, Some(token), Some(body)).await
    }

    /// `PUT /api/v1/instance/settings` as `token` with `body`.
    pub async fn put_instance_settings(
        &self,
        token: &str,
        body: Value,
    ) -> (reqwest::StatusCode, Value) {
        self.call("PUT", "/api/v1/instance/settings", Some(token), Some(body))
            .await
    }

    /// Signs in with username and password; returns status and body.
    pub async fn login(&self, username: &str, password: &str) -> (reqwest::StatusCode, Value) {
        self.call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(serde_json::json!({ "username": username, "password": password })),
        )
        .await
    }
}

/// An HS256 JWT signed with `key` carrying exactly `claims` (for hostile-token tests).
pub fn forge(header: &Value, claims: &Value, key: &[u8]) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::{Hmac, Mac};
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("hmac key");
    mac.update(format!("{h}.{c}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{h}.{c}.{sig}")
}

/// Access-token claims for `user_id`, expiring `exp_offset` seconds from now.
pub fn claims(user_id: i64, typ: &str, exp_offset: i64) -> Value {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    serde_json::json!({
        "sub": user_id.to_string(), "iss": "guildhall", "aud": "guildhall-api",
        "exp": now + exp_offset, "iat": now - 10, "nbf": now - 10,
        "jti": "x1", "typ": typ, "ver": 0
    })
}

/// A correctly signed access token that expired two minutes ago.
pub fn expired_token(app: &TestApp, user_id: i64) -> String {
    use secrecy::ExposeSecret;
    forge(
        &serde_json::json!({ "alg": "HS256", "typ": "JWT" }),
        &claims(user_id, "access", -120),
        app.state.secrets.jwt_secret_key.expose_secret().as_bytes(),
    )
}

/// An API key of `user_id` with `permissions`, optionally limited to one guild.
pub async fn api_key(
    app: &TestApp,
    user_id: i64,
    permissions: &[&str],
    guild: Option<i64>,
) -> String {
    use guildhall::auth::api_keys;
    use guildhall::store::api_keys as store;
    let generated = api_keys::generate(&app.state.secrets.secret_key);
    let perms = permissions
        .iter()
        .map(|p| p.parse().expect("permission"))
        .collect();
    store::create(
        &app.state.store,
        store::NewApiKey {
            prefix: &generated.prefix,
            secret_hash: &generated.secret_hash,
            name: "test key",
            user_id,
            permissions: &perms,
            guild_id: guild,
            expires_at: None,
        },
    )
    .await
    .expect("create key");
    api_keys::expose(&generated).to_owned()
}
