//! Sign in with Discord, and linking a local account to a Discord account: the redirect to
//! Discord (with `state` and PKCE kept server-side, single use, bound to the browser by a
//! cookie), the callback (code exchange, `/users/@me`, `/users/@me/guilds`, the user found or
//! created by Discord user id, access recomputed) and unlinking. Sessions are issued by the
//! accounts service, as for a password sign-in. Every attempt is rate-limited and audited;
//! a failed one stores nothing and starts no session.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::accounts::{AccountError, Accounts, LOGIN_PER_IP, SignIn};
use super::discord_access::{AccessError, Cause, DiscordAccessService};
use crate::actors::audit::{AuditError, AuditLog};
use crate::auth::authenticate::{Principal, Via};
use crate::auth::digest;
use crate::auth::discord_oauth::{DiscordOAuth, OAuthError};
use crate::domain::audit::AuditOrigin;
use crate::secrets::Secrets;
use crate::shared::ratelimit::{Quota, RateLimiter};
use crate::store::audit::{Actor, NewAuditEntry};
use crate::store::{Store, StoreError, discord_accounts, users};
use crate::types::Username;

/// How long the browser has between the redirect to Discord and the callback.
pub const REQUEST_TTL: Duration = Duration::from_secs(10 * 60);
/// Callbacks per client address per minute (each is an attempt, whatever its outcome).
pub const CALLBACK_PER_IP: Quota = LOGIN_PER_IP;
/// Redirects to Discord per client address per minute.
pub const START_PER_IP: Quota = Quota::per_minute(60);
const STATE_DOMAIN: &str = "discord_oauth_state";
const BINDING_DOMAIN: &str = "discord_oauth_binding";
const BINDING_LEN: usize = 32;

/// Why an attempt ended on the sign-in page; `code()` is what the page is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    NotConfigured,
    RateLimited,
    MissingState,
    /// Unknown, expired, already used, or started in another browser.
    InvalidState,
    Denied,
    MissingCode,
    InvalidGrant,
    DiscordError,
    DiscordTimeout,
    NoSharedGuild,
    AlreadyLinked,
    /// A role of the user turns Discord sign-in off.
    RefusedByRole,
    /// The user is disabled.
    Disabled,
    Internal,
}

impl Failure {
    pub fn code(self) -> &'static str {
        match self {
            Failure::NotConfigured => "discord_not_configured",
            Failure::RateLimited => "rate_limited",
            Failure::MissingState => "discord_missing_state",
            Failure::InvalidState => "discord_invalid_state",
            Failure::Denied => "discord_access_denied",
            Failure::MissingCode => "discord_missing_code",
            Failure::InvalidGrant => "discord_invalid_grant",
            Failure::DiscordError => "discord_error",
            Failure::DiscordTimeout => "discord_timeout",
            Failure::NoSharedGuild => "discord_no_shared_guild",
            Failure::AlreadyLinked => "discord_already_linked",
            Failure::RefusedByRole => "discord_sign_in_disabled_for_role",
            Failure::Disabled => "discord_account_disabled",
            Failure::Internal => "internal_error",
        }
    }

    const ALL: [Failure; 14] = [
        Failure::NotConfigured,
        Failure::RateLimited,
        Failure::MissingState,
        Failure::InvalidState,
        Failure::Denied,
        Failure::MissingCode,
        Failure::InvalidGrant,
        Failure::DiscordError,
        Failure::DiscordTimeout,
        Failure::NoSharedGuild,
        Failure::AlreadyLinked,
        Failure::RefusedByRole,
        Failure::Disabled,
        Failure::Internal,
    ];

    /// The message for a code the sign-in page was given (any text: it comes from the URL).
    pub fn message_for(code: &str) -> &'static str {
        Failure::ALL
            .iter()
            .find(|f| f.code() == code)
            .map_or("Sign in with Discord did not complete; try again.", |f| {
                f.message()
            })
    }

    pub fn message(self) -> &'static str {
        match self {
            Failure::NotConfigured => "Sign in with Discord is not configured on this instance.",
            Failure::RateLimited => "Too many attempts; wait a minute and try again.",
            Failure::MissingState | Failure::InvalidState => {
                "The Discord sign-in expired or was started elsewhere; start again."
            }
            Failure::Denied => "Discord sign-in was cancelled.",
            Failure::MissingCode | Failure::InvalidGrant => {
                "Discord did not accept the sign-in; start again."
            }
            Failure::DiscordError => "Discord failed to answer; try again later.",
            Failure::DiscordTimeout => "Discord did not answer in time; try again later.",
            Failure::NoSharedGuild => "You are in no Discord server this bot is in.",
            Failure::AlreadyLinked => "That Discord account is linked to another user.",
            Failure::RefusedByRole => {
                "Your role requires signing in with your password and second factor."
            }
            Failure::Disabled => "This account is disabled.",
            Failure::Internal => "Something went wrong; try again.",
        }
    }
}

/// Why an account operation (not a browser callback) failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscordAccountError {
    #[error("Discord sign-in is not configured")]
    NotConfigured,
    #[error("no Discord account is linked")]
    NotLinked,
    #[error("a Discord account is already linked; unlink it first")]
    AlreadyLinked,
    #[error("set a password before unlinking Discord, or you could not sign in again")]
    PasswordRequired,
    #[error("this needs a user's session or token, not an API key")]
    UserOnly,
    #[error("only a role that requires MFA can have Discord sign-in turned off")]
    RoleDoesNotRequireMfa,
    #[error("too many attempts; retry in {} s", .retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the browser is sent to Discord with, and the cookie value that binds it.
pub struct Started {
    pub authorize_url: String,
    pub binding: String,
}

/// What Discord sent back to the callback.
#[derive(Debug, Default)]
pub struct Callback<'a> {
    pub code: Option<&'a str>,
    pub state: Option<&'a str>,
    pub error: Option<&'a str>,
    /// The binding cookie, if the browser sent it.
    pub binding: Option<&'a str>,
}

/// A successful callback.
pub enum Finished {
    SignedIn(SignIn, String),
    Linked(String),
}

/// Whether Discord sign-in is available, and why not.
#[derive(Debug, Clone)]
pub struct Availability {
    pub available: bool,
    pub reason: Option<&'static str>,
    pub redirect_uri: Option<String>,
}

#[derive(Clone)]
pub struct DiscordSignIn {
    oauth: Option<Arc<DiscordOAuth>>,
    store: Store,
    audit: AuditLog,
    accounts: Accounts,
    access: DiscordAccessService,
    limiter: RateLimiter,
    keys: Secrets,
}

/// A local path to return to after signing in (`/guilds/1`), never another site.
pub fn local_next(next: Option<&str>) -> String {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && p.len() <= 512
                && !p.chars().any(char::is_control) =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

impl DiscordSignIn {
    pub fn new(
        oauth: Option<DiscordOAuth>,
        store: Store,
        audit: AuditLog,
        accounts: Accounts,
        access: DiscordAccessService,
        limiter: RateLimiter,
        keys: Secrets,
    ) -> Self {
        Self {
            oauth: oauth.map(Arc::new),
            store,
            audit,
            accounts,
            access,
            limiter,
            keys,
        }
    }

    pub fn access(&self) -> &DiscordAccessService {
        &self.access
    }

    pub fn availability(&self) -> Availability {
        match &self.oauth {
            Some(o) => Availability {
                available: true,
                reason: None,
                redirect_uri: Some(o.redirect_uri().to_owned()),
            },
            None => Availability {
                available: false,
                reason: Some("not_configured"),
                redirect_uri: None,
            },
        }
    }

    /// Where the browser is sent for consent (`https://discord.com`), when configured.
    pub fn authorize_origin(&self) -> Option<&str> {
        self.oauth.as_deref().map(DiscordOAuth::authorize_origin)
    }

    /// Starts a sign-in: the request is stored and the browser is to be sent to Discord.
    pub async fn start_sign_in(
        &self,
        next: Option<&str>,
        origin: &AuditOrigin,
    ) -> Result<Started, Failure> {
        let ip = origin.ip.as_deref().unwrap_or("unknown");
        if !self
            .limiter
            .hit("discord:start:ip", ip, START_PER_IP)
            .await
            .allowed
        {
            return Err(Failure::RateLimited);
        }
        self.start("sign_in", None, Some(local_next(next)))
            .await
            .map_err(|e| match e {
                DiscordAccountError::NotConfigured => Failure::NotConfigured,
                other => {
                    tracing::error!(error = ?other, "cannot store a Discord sign-in request");
                    Failure::Internal
                }
            })
    }

    /// Starts linking the caller's account to a Discord account.
    pub async fn start_link(&self, principal: &Principal) -> Result<Started, DiscordAccountError> {
        if principal.via == Via::ApiKey {
            return Err(DiscordAccountError::UserOnly);
        }
        let decision = self
            .limiter
            .hit(
                "discord:start:user",
                &principal.user_id.to_string(),
                START_PER_IP,
            )
            .await;
        if !decision.allowed {
            return Err(DiscordAccountError::RateLimited {
                retry_after: decision.reset_after,
            });
        }
        if discord_accounts::by_user(&self.store, principal.user_id)
            .await?
            .is_some()
        {
            return Err(DiscordAccountError::AlreadyLinked);
        }
        self.start("link", Some(principal.user_id), Some("/account".to_owned()))
            .await
    }

    async fn start(
        &self,
        purpose: &str,
        user_id: Option<i64>,
        next: Option<String>,
    ) -> Result<Started, DiscordAccountError> {
        let oauth = self
            .oauth
            .as_ref()
            .ok_or(DiscordAccountError::NotConfigured)?;
        let authorization = oauth.authorize();
        let binding = digest::random_string(digest::ALPHANUMERIC, BINDING_LEN);
        let key = &self.keys.secret_key;
        let request = discord_accounts::Request {
            binding_digest: digest::keyed(key, BINDING_DOMAIN, &binding),
            pkce_verifier: authorization.pkce_verifier.expose_secret().to_owned(),
            purpose: purpose.to_owned(),
            user_id,
            next_path: next,
            expires_at: crate::ids::now_ms()
                + i64::try_from(REQUEST_TTL.as_millis()).unwrap_or(i64::MAX),
        };
        let state_digest = digest::keyed(key, STATE_DOMAIN, authorization.state.expose_secret());
        discord_accounts::insert_request(&self.store, &state_digest, &request).await?;
        Ok(Started {
            authorize_url: authorization.url.to_string(),
            binding,
        })
    }

    /// Finishes an attempt: a session (or the second-factor step), or a link. A failure is
    /// audited and leaves nothing behind.
    pub async fn callback(
        &self,
        callback: Callback<'_>,
        origin: &AuditOrigin,
    ) -> Result<Finished, Failure> {
        let attempt = self.attempt(&callback, origin).await;
        if let Err((failure, discord_user)) = &attempt {
            let entry = NewAuditEntry::new(Actor::System, "auth.discord_login_failed")
                .details(json!({
                    "reason": failure.code(),
                    "discord_user_id": discord_user.map(|u| u.to_string()),
                }))
                .origin(origin.clone());
            if let Err(e) = self.audit.record(entry).await {
                tracing::error!(error = ?e, "cannot audit a failed Discord sign-in");
                return Err(Failure::Internal);
            }
        }
        attempt.map_err(|(f, _)| f)
    }

    async fn attempt(
        &self,
        callback: &Callback<'_>,
        origin: &AuditOrigin,
    ) -> Result<Finished, (Failure, Option<u64>)> {
        let fail = |f: Failure| (f, None);
        let oauth = self.oauth.as_ref().ok_or(fail(Failure::NotConfigured))?;
        let ip = origin.ip.as_deref().unwrap_or("unknown");
        if !self
            .limiter
            .hit("discord:callback:ip", ip, CALLBACK_PER_IP)
            .await
            .allowed
        {
            return Err(fail(Failure::RateLimited));
        }
        let state = callback
            .state
            .filter(|s| !s.is_empty() && s.len() <= 512)
            .ok_or(fail(Failure::MissingState))?;
        let key = &self.keys.secret_key;
        // Taken out whatever follows: a state is good for one callback only.
        let request =
            discord_accounts::take_request(&self.store, &digest::keyed(key, STATE_DOMAIN, state))
                .await
                .map_err(|e| internal(&e))?
                .ok_or(fail(Failure::InvalidState))?;
        let bound = callback
            .binding
            .is_some_and(|b| digest::matches(key, BINDING_DOMAIN, b, &request.binding_digest));
        if !bound || request.expires_at <= crate::ids::now_ms() {
            return Err(fail(Failure::InvalidState));
        }
        match callback.error {
            Some("access_denied") => return Err(fail(Failure::Denied)),
            Some(_) => return Err(fail(Failure::DiscordError)),
            None => {}
        }
        let code = callback
            .code
            .filter(|c| !c.is_empty() && c.len() <= 512)
            .ok_or(fail(Failure::MissingCode))?;
        let verifier = SecretString::from(request.pkce_verifier.clone());
        let token = oauth
            .exchange(code, &verifier)
            .await
            .map_err(|e| fail(oauth_failure(&e)))?;
        let user = oauth
            .user(&token)
            .await
            .map_err(|e| fail(oauth_failure(&e)))?;
        let guilds = oauth
            .guilds(&token)
            .await
            .map_err(|e| fail(oauth_failure(&e)))?;
        let discord_id = i64::try_from(user.id).map_err(|_| fail(Failure::DiscordError))?;
        let with_user = |f: Failure| (f, Some(user.id));
        let next = local_next(request.next_path.as_deref());

        if request.purpose == "link" {
            let user_id = request.user_id.ok_or(fail(Failure::InvalidState))?;
            discord_accounts::link(&self.store, user_id, discord_id, &user.username)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(_) => with_user(Failure::AlreadyLinked),
                    other => internal(&other),
                })?;
            self.audit
                .record(
                    NewAuditEntry::new(Actor::System, "auth.discord_linked")
                        .target(format!("user:{user_id}"))
                        .details(json!({
                            "discord_user_id": user.id.to_string(),
                            "discord_username": user.username,
                        }))
                        .origin(origin.clone()),
                )
                .await
                .map_err(|e| internal(&e))?;
            self.access
                .sync_from_guilds(user_id, user.id, &guilds, Cause::Linked, origin)
                .await
                .map_err(|e| internal(&e))?;
            return Ok(Finished::Linked(next));
        }

        let user_id = match discord_accounts::by_discord_id(&self.store, discord_id)
            .await
            .map_err(|e| internal(&e))?
        {
            Some(link) => {
                if let Some(role) = discord_accounts::sign_in_refused_by(&self.store, link.user_id)
                    .await
                    .map_err(|e| internal(&e))?
                {
                    tracing::info!(
                        user = link.user_id,
                        role,
                        "Discord sign-in refused by a role"
                    );
                    return Err(with_user(Failure::RefusedByRole));
                }
                link.user_id
            }
            None => {
                let shared = self
                    .access
                    .shared_guilds(&guilds)
                    .await
                    .map_err(|e| internal(&e))?;
                if shared.is_empty() {
                    return Err(with_user(Failure::NoSharedGuild));
                }
                let created = self
                    .create_user(discord_id, &user.username)
                    .await
                    .map_err(|e| internal(&e))?;
                self.audit
                    .record(
                        NewAuditEntry::new(Actor::System, "users.created_from_discord")
                            .target(format!("user:{}", created.id))
                            .details(json!({
                                "username": created.username,
                                "discord_user_id": user.id.to_string(),
                            }))
                            .origin(origin.clone()),
                    )
                    .await
                    .map_err(|e| internal(&e))?;
                created.id
            }
        };
        let disabled = users::credentials_by_id(&self.store, user_id)
            .await
            .map_err(|e| internal(&e))?
            .is_none_or(|c| c.disabled);
        if disabled {
            return Err(with_user(Failure::Disabled));
        }
        self.access
            .sync_from_guilds(user_id, user.id, &guilds, Cause::SignIn, origin)
            .await
            .map_err(|e| internal(&e))?;
        let signed_in = self
            .accounts
            .sign_in_verified(
                user_id,
                json!({ "via": "discord", "discord_user_id": user.id.to_string() }),
                origin,
            )
            .await
            .map_err(|e| match e {
                AccountError::Unauthenticated => with_user(Failure::Disabled),
                other => internal(&other),
            })?;
        Ok(Finished::SignedIn(signed_in, next))
    }

    /// A new user named after the Discord account (or `discord_<id>` when that name is not
    /// a valid username or is taken).
    async fn create_user(
        &self,
        discord_id: i64,
        discord_username: &str,
    ) -> Result<users::User, StoreError> {
        let fallback = format!("discord_{discord_id}");
        let preferred = Username::parse(discord_username)
            .map(|u| u.as_str().to_owned())
            .unwrap_or_else(|_| fallback.clone());
        match discord_accounts::create_linked_user(
            &self.store,
            &preferred,
            discord_id,
            discord_username,
        )
        .await
        {
            Err(StoreError::Conflict(_)) if preferred != fallback => {
                discord_accounts::create_linked_user(
                    &self.store,
                    &fallback,
                    discord_id,
                    discord_username,
                )
                .await
            }
            other => other,
        }
    }

    /// The Discord account linked to the caller, if any.
    pub async fn link_of(
        &self,
        principal: &Principal,
    ) -> Result<Option<discord_accounts::Link>, DiscordAccountError> {
        if principal.via == Via::ApiKey {
            return Err(DiscordAccountError::UserOnly);
        }
        Ok(discord_accounts::by_user(&self.store, principal.user_id).await?)
    }

    /// Unlinks the caller's Discord account, and with it every access Discord gave.
    pub async fn unlink(
        &self,
        principal: &Principal,
        origin: &AuditOrigin,
    ) -> Result<(), DiscordAccountError> {
        if principal.via == Via::ApiKey {
            return Err(DiscordAccountError::UserOnly);
        }
        let user = users::credentials_by_id(&self.store, principal.user_id)
            .await?
            .ok_or(DiscordAccountError::NotLinked)?;
        if discord_accounts::by_user(&self.store, user.id)
            .await?
            .is_none()
        {
            return Err(DiscordAccountError::NotLinked);
        }
        if user.password_hash.is_empty() {
            return Err(DiscordAccountError::PasswordRequired);
        }
        let link = discord_accounts::unlink(&self.store, user.id)
            .await?
            .ok_or(DiscordAccountError::NotLinked)?;
        self.accounts.forget_cached_user(user.id).await;
        self.audit
            .record(
                NewAuditEntry::new(principal.actor.clone(), "auth.discord_unlinked")
                    .target(format!("user:{}", user.id))
                    .details(json!({ "discord_user_id": link.discord_user_id.to_string() }))
                    .origin(origin.clone()),
            )
            .await?;
        Ok(())
    }

    /// Turns Discord sign-in on or off for the holders of a role (off only for a role that
    /// requires MFA, whose holders then sign in with their password and second factor).
    pub async fn set_role_sign_in(
        &self,
        actor: Actor,
        role_id: i64,
        allowed: bool,
        origin: &AuditOrigin,
    ) -> Result<(), DiscordAccountError> {
        let (name, require_mfa, current) =
            discord_accounts::role_switch(&self.store, role_id).await?;
        if !allowed && !require_mfa {
            return Err(DiscordAccountError::RoleDoesNotRequireMfa);
        }
        if current == allowed {
            return Ok(());
        }
        discord_accounts::set_role_switch(&self.store, role_id, allowed).await?;
        self.audit
            .record(
                NewAuditEntry::new(actor, "roles.discord_sign_in")
                    .target(format!("role:{role_id}"))
                    .details(json!({ "role": name, "allowed": allowed }))
                    .origin(origin.clone()),
            )
            .await?;
        Ok(())
    }

    /// Whether Discord sign-in is allowed for a role.
    pub async fn role_sign_in(&self, role_id: i64) -> Result<bool, DiscordAccountError> {
        Ok(discord_accounts::role_switch(&self.store, role_id).await?.2)
    }
}

fn oauth_failure(e: &OAuthError) -> Failure {
    tracing::warn!(error = %e, "Discord sign-in: Discord call failed");
    match e {
        OAuthError::InvalidGrant => Failure::InvalidGrant,
        OAuthError::Timeout => Failure::DiscordTimeout,
        OAuthError::Client(_) | OAuthError::Upstream(_) => Failure::DiscordError,
    }
}

fn internal(e: &dyn std::fmt::Debug) -> (Failure, Option<u64>) {
    tracing::error!(error = ?e, "Discord sign-in failed inside guildhall");
    (Failure::Internal, None)
}

impl From<AccessError> for DiscordAccountError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Store(e) => DiscordAccountError::Store(e),
            AccessError::Audit(e) => DiscordAccountError::Audit(e),
        }
    }
}
