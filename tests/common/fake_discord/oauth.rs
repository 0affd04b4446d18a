//! Discord's OAuth2 side, as the fake plays it: `/oauth2/authorize` (consent is simulated: the
//! test says who consents, or that consent is denied, and follows the redirect; or, for a real
//! browser, the fake shows a consent page whose "Authorize" and "Cancel" buttons post back),
//! `/api/v10/oauth2/token` (client credentials, single-use codes that expire, the redirect URI
//! and the PKCE S256 verifier checked; Discord's `invalid_grant` / `invalid_client` shapes),
//! `/api/v10/users/@me` and `/api/v10/users/@me/guilds` with a bearer token (guilds with the
//! user's permissions bitfield). Also the gateway's member events (GUILD_MEMBER_UPDATE and
//! GUILD_MEMBER_REMOVE), with the guild's state changed to match.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

use super::payloads::{self, TIMESTAMP};
use super::{FakeDiscord, lock};

pub const CLIENT_ID: &str = "900000000000000003";
pub const CLIENT_SECRET: &str = "fake-client-secret-for-tests";

/// What the simulated user does on Discord's consent screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// The user with this id approves.
    Approve(u64),
    /// The user presses "Cancel": Discord redirects with `error=access_denied`.
    Deny,
    /// Discord shows its consent screen, a page a browser submits: "Authorize" approves as
    /// this user, "Cancel" denies.
    Ask(u64),
}

#[derive(Debug, Clone)]
struct Code {
    user: u64,
    redirect_uri: String,
    challenge: String,
    used: bool,
}

/// One call to the OAuth endpoints as the fake received it.
#[derive(Debug, Clone)]
pub struct OAuthCall {
    pub path: String,
    /// The query (authorize) or the form body (token).
    pub params: HashMap<String, String>,
}

#[derive(Default)]
pub struct OAuthState {
    consent: Option<Consent>,
    codes: HashMap<String, Code>,
    tokens: HashMap<String, u64>,
    /// Users known to Discord but in no guild of the fake (name by id).
    users: HashMap<u64, String>,
    /// Answer the token endpoint with this status and body instead.
    token_failure: Option<(u16, Value)>,
    /// Answer `/users/@me/guilds` with this status instead.
    guilds_failure: Option<u16>,
    /// Delay before answering the token and user endpoints (timeouts).
    delay: Option<Duration>,
    calls: Vec<OAuthCall>,
    next: u64,
}

fn query_map(raw: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}

fn oauth_error(status: u16, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
        .json(json!({"error": error, "error_description": description}))
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// Handles the OAuth paths; `None` for every other path.
pub(super) async fn route(
    req: &HttpRequest,
    body: &[u8],
    fake: &std::sync::Mutex<super::State>,
) -> Option<HttpResponse> {
    let path = req.path();
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let is_user_call =
        matches!(path, "/api/v10/users/@me" | "/api/v10/users/@me/guilds") && bearer.is_some();
    if !matches!(path, "/oauth2/authorize" | "/api/v10/oauth2/token") && !is_user_call {
        return None;
    }
    // The consent page posts its form back to `/oauth2/authorize`.
    let params = if path == "/oauth2/authorize" && req.method() == actix_web::http::Method::GET {
        query_map(req.query_string())
    } else {
        query_map(&String::from_utf8_lossy(body))
    };
    let delay = {
        let mut st = lock(fake);
        st.oauth.calls.push(OAuthCall {
            path: path.to_owned(),
            params: params.clone(),
        });
        st.oauth.delay
    };
    if path != "/oauth2/authorize"
        && let Some(d) = delay
    {
        tokio::time::sleep(d).await;
    }
    Some(match path {
        "/oauth2/authorize" => {
            authorize(req.method() == actix_web::http::Method::POST, &params, fake)
        }
        "/api/v10/oauth2/token" => token(req, &params, fake),
        _ => user_call(path, bearer.as_deref().unwrap_or_default(), fake),
    })
}

/// `GET` (the browser arrives) or `POST` (the consent page's buttons) `/oauth2/authorize`.
fn authorize(
    posted: bool,
    p: &HashMap<String, String>,
    fake: &std::sync::Mutex<super::State>,
) -> HttpResponse {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != CLIENT_ID {
        return oauth_error(400, "invalid_client", "Unknown application");
    }
    if get("response_type") != "code" || get("code_challenge_method") != "S256" {
        return oauth_error(400, "invalid_request", "code flow with S256 PKCE expected");
    }
    let mut scopes: Vec<&str> = get("scope").split(' ').collect();
    scopes.sort_unstable();
    if scopes != ["guilds", "identify"] {
        return oauth_error(400, "invalid_scope", "expected `identify guilds`");
    }
    let redirect = get("redirect_uri").to_owned();
    let state = get("state").to_owned();
    let mut st = lock(fake);
    let approved = match (st.oauth.consent, posted) {
        (Some(Consent::Ask(_)), false) => return consent_page(p),
        (Some(Consent::Ask(user)), true) => (get("decision") == "approve").then_some(user),
        (Some(Consent::Approve(user)), _) => Some(user),
        (Some(Consent::Deny) | None, _) => None,
    };
    let location = match approved {
        Some(user) => {
            st.oauth.next += 1;
            let code = format!("code{}x{}", st.oauth.next, super::rand_suffix());
            st.oauth.codes.insert(
                code.clone(),
                Code {
                    user,
                    redirect_uri: redirect.clone(),
                    challenge: get("code_challenge").to_owned(),
                    used: false,
                },
            );
            format!("{redirect}?code={code}&state={state}")
        }
        None => format!(
            "{redirect}?error=access_denied&error_description=The+resource+owner+or+authorization+server+denied+the+request&state={state}"
        ),
    };
    HttpResponse::Found()
        .insert_header(("Location", location))
        .finish()
}

/// Discord's consent screen, reduced to what a browser needs: the request's parameters carried
/// in hidden fields, and the two buttons. Accessible, so a flow can check it like its own pages.
fn consent_page(p: &HashMap<String, String>) -> HttpResponse {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut keys: Vec<&String> = p.keys().filter(|k| *k != "decision").collect();
    keys.sort();
    let hidden: String = keys
        .into_iter()
        .map(|k| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                escape(k),
                escape(&p[k])
            )
        })
        .collect();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Authorize access - fake Discord</title></head>
<body><main><h1>An application wants to access your Discord account</h1>
<p>It asks to know who you are and which servers you are in (identify guilds).</p>
<form method="post" action="/oauth2/authorize">{hidden}
<button type="submit" name="decision" value="deny">Cancel</button>
<button type="submit" name="decision" value="approve">Authorize</button>
</form></main></body></html>"#
        ))
}

fn token(
    req: &HttpRequest,
    p: &HashMap<String, String>,
    fake: &std::sync::Mutex<super::State>,
) -> HttpResponse {
    let mut st = lock(fake);
    if let Some((status, body)) = st.oauth.token_failure.clone() {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
            .json(body);
    }
    let basic = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let from_body = p
        .get("client_id")
        .zip(p.get("client_secret"))
        .map(|(i, s)| format!("{i}:{s}"));
    let expected = format!("{CLIENT_ID}:{CLIENT_SECRET}");
    // oauth2 URL-encodes the id and secret inside Basic; ours need no encoding.
    if basic.or(from_body).as_deref() != Some(expected.as_str()) {
        return oauth_error(401, "invalid_client", "Invalid client");
    }
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    if get("grant_type") != "authorization_code" {
        return oauth_error(400, "unsupported_grant_type", "Unsupported grant type");
    }
    let invalid = || oauth_error(400, "invalid_grant", "Invalid \"code\" in request.");
    let Some(code) = st.oauth.codes.get_mut(get("code")) else {
        return invalid();
    };
    if code.used
        || code.redirect_uri != get("redirect_uri")
        || s256(get("code_verifier")) != code.challenge
    {
        return invalid();
    }
    code.used = true;
    let user = code.user;
    st.oauth.next += 1;
    let access = format!("access{}x{}", st.oauth.next, super::rand_suffix());
    st.oauth.tokens.insert(access.clone(), user);
    HttpResponse::Ok().json(json!({
        "token_type": "Bearer",
        "access_token": access,
        "expires_in": 604_800,
        "refresh_token": format!("refresh{}", st.oauth.next),
        "scope": "identify guilds"
    }))
}

fn user_call(path: &str, bearer: &str, fake: &std::sync::Mutex<super::State>) -> HttpResponse {
    let st = lock(fake);
    let Some(&user) = st.oauth.tokens.get(bearer) else {
        return HttpResponse::Unauthorized()
            .json(json!({"message": "401: Unauthorized", "code": 0}));
    };
    if path == "/api/v10/users/@me" {
        let name = st
            .oauth
            .users
            .get(&user)
            .cloned()
            .or_else(|| {
                st.guilds
                    .values()
                    .find_map(|g| g.member(user).map(|m| m.username.clone()))
            })
            .unwrap_or_else(|| format!("user{user}"));
        return HttpResponse::Ok().json(payloads::user(user, &name, false));
    }
    if let Some(status) = st.oauth.guilds_failure {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
            .json(json!({"message": "500: Internal Server Error", "code": 0}));
    }
    let guilds: Vec<Value> = st
        .guilds
        .values()
        .filter_map(|g| {
            let m = g.member(user)?;
            let owner = g.owner_id == user;
            let permissions = if owner {
                u64::MAX >> 13
            } else {
                g.roles
                    .iter()
                    .filter(|r| r.id == g.id || m.roles.contains(&r.id))
                    .fold(0, |acc, r| acc | r.permissions)
            };
            Some(json!({
                "id": g.id.to_string(),
                "name": g.name,
                "icon": null,
                "banner": null,
                "owner": owner,
                "permissions": permissions.to_string(),
                "features": []
            }))
        })
        .collect();
    HttpResponse::Ok().json(guilds)
}

/// The variables that turn Discord sign-in on for this fake's application, with browsers
/// reaching guildhall at `public_url` (the bot's own come from [`FakeDiscord::env`]).
pub fn oauth_vars(public_url: &str) -> Vec<(String, String)> {
    vec![
        ("DISCORD_CLIENT_ID".into(), CLIENT_ID.into()),
        ("DISCORD_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
        ("GUILDHALL_PUBLIC_URL".into(), public_url.into()),
    ]
}

impl FakeDiscord {
    /// Environment for the app with Discord sign-in configured against this fake.
    pub fn oauth_env(&self, public_url: &str) -> Vec<(String, String)> {
        let mut env = self.env();
        env.extend(oauth_vars(public_url));
        env
    }

    /// Who approves (or that consent is denied) on the next authorizations.
    pub fn set_consent(&self, consent: Consent) {
        lock(&self.state).oauth.consent = Some(consent);
    }

    /// A Discord user who is in none of the fake's guilds.
    pub fn add_oauth_user(&self, id: u64, name: &str) {
        lock(&self.state).oauth.users.insert(id, name.to_owned());
    }

    /// The token endpoint answers `status` with `body` (Discord's error shapes).
    pub fn set_token_failure(&self, failure: Option<(u16, Value)>) {
        lock(&self.state).oauth.token_failure = failure;
    }

    pub fn set_guilds_failure(&self, status: Option<u16>) {
        lock(&self.state).oauth.guilds_failure = status;
    }

    /// Delay of the token and user endpoints.
    pub fn set_oauth_delay(&self, delay: Option<Duration>) {
        lock(&self.state).oauth.delay = delay;
    }

    /// Every code handed out so far expires (Discord then answers `invalid_grant`).
    pub fn expire_codes(&self) {
        lock(&self.state).oauth.codes.clear();
    }

    pub fn oauth_calls(&self) -> Vec<OAuthCall> {
        lock(&self.state).oauth.calls.clone()
    }

    /// Changes a member's roles in the fake's guild and sends GUILD_MEMBER_UPDATE.
    pub fn update_member_roles(&self, shard: u32, guild: u64, user: u64, roles: Vec<u64>) {
        let member = {
            let mut st = lock(&self.state);
            let g = st.guilds.get_mut(&guild).expect("guild exists");
            let m = g
                .members
                .iter_mut()
                .find(|m| m.id == user)
                .expect("member exists");
            m.roles = roles.clone();
            m.clone()
        };
        self.dispatch(
            shard,
            "GUILD_MEMBER_UPDATE",
            json!({
                "guild_id": guild.to_string(),
                "roles": roles.iter().map(u64::to_string).collect::<Vec<_>>(),
                "user": payloads::user(member.id, &member.username, member.bot),
                "nick": null,
                "avatar": null,
                "banner": null,
                "joined_at": TIMESTAMP,
                "premium_since": null,
                "deaf": false,
                "mute": false,
                "pending": false,
                "communication_disabled_until": null,
                "flags": 0
            }),
        );
    }

    /// Removes a member from the fake's guild and sends GUILD_MEMBER_REMOVE.
    pub fn remove_member(&self, shard: u32, guild: u64, user: u64) {
        let member = {
            let mut st = lock(&self.state);
            let g = st.guilds.get_mut(&guild).expect("guild exists");
            let pos = g
                .members
                .iter()
                .position(|m| m.id == user)
                .expect("member exists");
            g.members.remove(pos)
        };
        self.dispatch(
            shard,
            "GUILD_MEMBER_REMOVE",
            json!({
                "guild_id": guild.to_string(),
                "user": payloads::user(member.id, &member.username, member.bot)
            }),
        );
    }
}
