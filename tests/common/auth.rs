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
