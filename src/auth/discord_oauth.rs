//! Discord's OAuth2 authorization-code flow with PKCE (S256), through the `oauth2` crate, and
//! the two reads a sign-in needs (`/users/@me`, `/users/@me/guilds`). Discord's endpoints hang
//! off one base URL: `https://discord.com`, or `DISCORD_PROXY_URL` when set (the fake Discord
//! in tests), the same base the bot's REST client uses.

use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    HttpClientError, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::config::DiscordOAuthSettings;

const DISCORD: &str = "https://discord.com";
/// `identify` for who the user is, `guilds` for the guilds they are in and their permissions.
pub const SCOPES: [&str; 2] = ["identify", "guilds"];

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Why talking to Discord failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The code is unknown, expired, already used, or its PKCE verifier does not match.
    #[error("Discord refused the authorization code (invalid_grant)")]
    InvalidGrant,
    /// Discord refused our client id or secret: a configuration problem.
    #[error("Discord refused the client credentials ({0})")]
    Client(String),
    /// Discord did not answer in time.
    #[error("Discord did not answer within the timeout")]
    Timeout,
    /// Discord answered with an error status or a body that is not what it documents.
    #[error("Discord failed: {0}")]
    Upstream(String),
}

/// The user behind an access token (`GET /users/@me`).
#[derive(Debug, Clone, Deserialize)]
pub struct DiscordUser {
    #[serde(deserialize_with = "snowflake")]
    pub id: u64,
    pub username: String,
    #[serde(default)]
    pub global_name: Option<String>,
}

/// One entry of `GET /users/@me/guilds`.
#[derive(Debug, Clone, Deserialize)]
pub struct DiscordGuild {
    #[serde(deserialize_with = "snowflake")]
    pub id: u64,
    #[serde(default)]
    pub owner: bool,
    /// The user's effective permissions in the guild (a decimal string on the wire).
    #[serde(default, deserialize_with = "bitfield")]
    pub permissions: u64,
}

fn snowflake<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

fn bitfield<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Bits {
        Text(String),
        Number(u64),
    }
    match Bits::deserialize(d)? {
        Bits::Text(s) => s.parse().map_err(serde::de::Error::custom),
        Bits::Number(n) => Ok(n),
    }
}

/// A redirect to Discord, and what must be kept to finish it.
pub struct Authorization {
    pub url: Url,
    pub state: SecretString,
    pub pkce_verifier: SecretString,
}

/// The configured Discord application.
#[derive(Clone)]
pub struct DiscordOAuth {
    client: Client,
    http: reqwest::Client,
    api: String,
    redirect_uri: String,
    /// The origin of the consent screen (`https://discord.com`), for the pages whose forms
    /// redirect there (see `web::headers::FormRedirectsTo`).
    authorize_origin: String,
}

impl DiscordOAuth {
    /// `proxy`: the base URL of Discord's REST API when a proxy (or the fake) stands in.
    pub fn new(settings: &DiscordOAuthSettings, proxy: Option<&Url>) -> Result<Self, String> {
        let base = proxy
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_else(|| DISCORD.to_owned());
        let redirect_uri = settings.redirect_uri();
        let auth_url =
            AuthUrl::new(format!("{base}/oauth2/authorize")).map_err(|e| e.to_string())?;
        let authorize_origin = auth_url.url().origin().ascii_serialization();
        let client = BasicClient::new(ClientId::new(settings.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                settings.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(auth_url)
            .set_token_uri(
                TokenUrl::new(format!("{base}/api/v10/oauth2/token")).map_err(|e| e.to_string())?,
            )
            .set_redirect_uri(RedirectUrl::new(redirect_uri.clone()).map_err(|e| e.to_string())?);
        let http = reqwest::Client::builder()
            // The token endpoint must not redirect us anywhere (SSRF); Discord never does.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            http,
            api: format!("{base}/api/v10"),
            redirect_uri,
            authorize_origin,
        })
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    pub fn authorize_origin(&self) -> &str {
        &self.authorize_origin
    }

    /// A fresh `state` and PKCE pair, and the URL that sends the browser to Discord's consent.
    pub fn authorize(&self) -> Authorization {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .client
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge);
        for scope in SCOPES {
            request = request.add_scope(Scope::new(scope.to_owned()));
        }
        let (url, state) = request.url();
        Authorization {
            url,
            state: SecretString::from(state.secret().clone()),
            pkce_verifier: SecretString::from(verifier.secret().clone()),
        }
    }

    /// Exchanges an authorization code (with its PKCE verifier) for an access token.
    pub async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &SecretString,
    ) -> Result<SecretString, OAuthError> {
        let answer = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(
                pkce_verifier.expose_secret().to_owned(),
            ))
            .request_async(&self.http)
            .await;
        match answer {
            Ok(token) => Ok(SecretString::from(token.access_token().secret().clone())),
            Err(RequestTokenError::ServerResponse(e)) => Err(match e.error() {
                BasicErrorResponseType::InvalidGrant => OAuthError::InvalidGrant,
                BasicErrorResponseType::InvalidClient
                | BasicErrorResponseType::UnauthorizedClient => {
                    OAuthError::Client(e.error().to_string())
                }
                other => OAuthError::Upstream(format!("token endpoint: {other}")),
            }),
            Err(RequestTokenError::Request(HttpClientError::Reqwest(e))) if e.is_timeout() => {
                Err(OAuthError::Timeout)
            }
            Err(RequestTokenError::Request(e)) => {
                Err(OAuthError::Upstream(format!("token endpoint: {e}")))
            }
            Err(RequestTokenError::Parse(e, _)) => Err(OAuthError::Upstream(format!(
                "token endpoint answered an unreadable body ({e})"
            ))),
            Err(RequestTokenError::Other(e)) => {
                Err(OAuthError::Upstream(format!("token endpoint: {e}")))
            }
        }
    }

    pub async fn user(&self, token: &SecretString) -> Result<DiscordUser, OAuthError> {
        self.get(token, "/users/@me").await
    }

    pub async fn guilds(&self, token: &SecretString) -> Result<Vec<DiscordGuild>, OAuthError> {
        self.get(token, "/users/@me/guilds").await
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        token: &SecretString,
        path: &str,
    ) -> Result<T, OAuthError> {
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                OAuthError::Timeout
            } else {
                OAuthError::Upstream(format!("{path}: {e}"))
            }
        };
        let response = self
            .http
            .get(format!("{}{path}", self.api))
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        if !status.is_success() {
            return Err(OAuthError::Upstream(format!("{path}: HTTP {status}")));
        }
        let body = response.bytes().await.map_err(failed)?;
        serde_json::from_slice(&body)
            .map_err(|e| OAuthError::Upstream(format!("{path}: unexpected body ({e})")))
    }
}

impl std::fmt::Debug for DiscordOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordOAuth")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}
