//! Accounts and sessions: creating users, passwords, revoking a user's tokens, signing in (with a
//! second factor when enrolled) and issuing sessions. The CLI, the API and the dashboard call
//! these functions; they return values (tokens, the cookie's value), never an HTTP response.
//!
//! - [`session`]: sign-in, refresh, sign-out and the one place a session is issued.
//! - [`mfa`]: TOTP enrolment, its confirmation and its removal.

pub mod mfa;
pub mod session;

use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;

use crate::actors::audit::{AuditError, AuditLog};
use crate::auth::authenticate::{Principal, Via};
use crate::auth::cache::AuthCache;
use crate::auth::password;
use crate::domain::audit::AuditOrigin;
use crate::secrets::Secrets;
use crate::shared::ratelimit::{Quota, RateLimiter};
use crate::store::audit::{Actor, NewAuditEntry};
use crate::store::users::{self, Credentials, User, UserSummary};
use crate::store::{Store, StoreError, instance_settings, invites};
use crate::types::{NewPassword, Username};

pub use session::{Session, SignIn, Tokens};

/// Sign-in attempts per account (by username) in 15 minutes, whatever the outcome.
pub const LOGIN_PER_ACCOUNT: Quota = Quota {
    limit: 10,
    window: Duration::from_secs(15 * 60),
};
/// Sign-in (and registration) attempts per client address per minute.
pub const LOGIN_PER_IP: Quota = Quota::per_minute(60);
/// TOTP / recovery-code attempts per account in 5 minutes.
pub const MFA_PER_ACCOUNT: Quota = Quota {
    limit: 5,
    window: Duration::from_secs(5 * 60),
};
pub const MFA_PER_IP: Quota = Quota::per_minute(30);
pub const REFRESH_PER_IP: Quota = Quota::per_minute(60);
pub const REFRESH_PER_ACCOUNT: Quota = Quota::per_minute(20);

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A wrong password, an unknown or disabled user, or a token that is invalid, expired,
    /// revoked or reused: one answer, so accounts cannot be discovered.
    #[error("authentication required")]
    Unauthenticated,
    /// API keys cannot manage their creator's account.
    #[error("this action needs a user's token, not an API key")]
    UserOnly,
    #[error("the current password is not correct")]
    WrongCurrentPassword,
    #[error("the password is not correct")]
    WrongPassword,
    #[error("the code is invalid, expired or already used")]
    InvalidCode,
    #[error("MFA is already enabled")]
    MfaAlreadyEnabled,
    #[error("MFA enrolment has not been started")]
    MfaNotStarted,
    #[error("MFA is not enabled")]
    MfaNotEnabled,
    #[error("registration is closed and no invite was given")]
    RegistrationClosed,
    #[error("the invite is invalid, expired or used")]
    InvalidInvite,
    #[error("username `{0}` is taken")]
    UsernameTaken(String),
    #[error("role `{0}` does not exist")]
    UnknownRole(String),
    #[error("too many attempts; retry in {} s", .retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// The action was not confirmed because its audit entry could not be written.
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing, signing or the blocking pool failed: nothing the caller can fix.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl AccountError {
    fn internal(e: impl Into<anyhow::Error>) -> Self {
        AccountError::Internal(e.into())
    }
}

/// How a new account comes to be; each path keeps its own audit entry.
pub enum NewAccount<'a> {
    /// `guildhall user create`: one global role, by name.
    Cli { role: &'a str },
    /// The `admin` the first start creates when there is no user at all.
    FirstStart,
    /// An administrator (`POST /api/v1/users`): grants as `(role id, guild id)`, already
    /// checked against what the administrator may hand out.
    ByAdministrator {
        actor: Actor,
        grants: &'a [(i64, i64)],
    },
    /// Self-service registration: needs open registration or an invite, which is spent in the
    /// same transaction that creates the user.
    Registration { invite: Option<&'a str> },
}

/// Users, passwords and sessions, with everything they depend on.
#[derive(Clone)]
pub struct Accounts {
    store: Store,
    audit: AuditLog,
    auth_cache: AuthCache,
    limiter: RateLimiter,
    keys: Secrets,
}

impl Accounts {
    pub fn new(
        store: Store,
        audit: AuditLog,
        auth_cache: AuthCache,
        limiter: RateLimiter,
        keys: Secrets,
    ) -> Self {
        Self {
            store,
            audit,
            auth_cache,
            limiter,
            keys,
        }
    }

    /// Creates a user with a password that already meets the policy (argon2 runs on the
    /// blocking pool) and records who created it.
    pub async fn create_user(
        &self,
        username: &Username,
        password: NewPassword,
        how: NewAccount<'_>,
        origin: &AuditOrigin,
    ) -> Result<UserSummary, AccountError> {
        if let NewAccount::Registration { invite } = how {
            self.limit("register:ip", client(origin), LOGIN_PER_IP)
                .await?;
            if invite.is_none() && !instance_settings::registration_open(&self.store).await? {
                return Err(AccountError::RegistrationClosed);
            }
        }
        let hash = hash_password(password).await?;
        let name = username.as_str();
        let taken = |e: StoreError| match e {
            StoreError::Conflict(_) => AccountError::UsernameTaken(name.to_owned()),
            other => AccountError::Store(other),
        };
        let (user, entry) = match how {
            NewAccount::FirstStart => {
                let user = users::create(&self.store, name, &hash, Some("admin"))
                    .await
                    .map_err(taken)?;
                let entry = NewAuditEntry::new(Actor::System, "user.create")
                    .details(json!({ "username": name, "role": "admin", "via": "first start" }));
                (user, entry)
            }
            NewAccount::Cli { role } => {
                let user = users::create(&self.store, name, &hash, Some(role))
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => AccountError::UnknownRole(role.to_owned()),
                        other => taken(other),
                    })?;
                let entry = NewAuditEntry::new(Actor::System, "user.create")
                    .details(json!({ "username": name, "role": role, "via": "cli" }));
                (user, entry)
            }
            NewAccount::ByAdministrator { actor, grants } => {
                let user = users::create_with_grants(&self.store, name, &hash, grants)
                    .await
                    .map_err(taken)?;
                let summary = users::summary(&self.store, user.id).await?;
                let entry = NewAuditEntry::new(actor, "users.create").details(
                    json!({ "username": user.username, "roles": grant_details(&summary) }),
                );
                (user, entry)
            }
            NewAccount::Registration { invite } => {
                let user = match invite {
                    Some(invite) => {
                        let digest = invites::digest(&self.keys.secret_key, invite);
                        invites::redeem(&self.store, &digest, name, &hash)
                            .await
                            .map_err(|e| match e {
                                StoreError::NotFound => AccountError::InvalidInvite,
                                other => taken(other),
                            })?
                    }
                    None => users::create(&self.store, name, &hash, None)
                        .await
                        .map_err(taken)?,
                };
                let entry = NewAuditEntry::new(user_actor_of(&user), "users.registered")
                    .details(json!({ "invite": invite.is_some() }));
                (user, entry)
            }
        };
        self.audit
            .record(
                entry
                    .target(format!("user:{}", user.id))
                    .origin(origin.clone()),
            )
            .await?;
        Ok(users::summary(&self.store, user.id).await?)
    }

    /// On a first start (no user at all) creates `admin` with a generated password, returned
    /// to be shown once and never stored in clear. Two instances starting together race; the
    /// unique username lets exactly one win, and the other returns `None`.
    pub async fn create_initial_admin(&self) -> Result<Option<SecretString>, AccountError> {
        if users::count(&self.store).await? > 0 {
            return Ok(None);
        }
        let generated = password::generate();
        let password = NewPassword::parse(generated.clone()).map_err(|e| {
            AccountError::internal(anyhow::anyhow!("generated password refused: {e}"))
        })?;
        let admin = Username::parse("admin")
            .map_err(|e| AccountError::internal(anyhow::anyhow!("username refused: {e}")))?;
        match self
            .create_user(
                &admin,
                password,
                NewAccount::FirstStart,
                &AuditOrigin::internal(),
            )
            .await
        {
            Ok(_) => Ok(Some(generated)),
            Err(AccountError::UsernameTaken(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes every token the user holds worthless at once: a new token version (which also
    /// revokes every refresh family) and, on every instance, the cached copy forgotten. The
    /// one way to do it, so neither half can be left out. Returns the new version.
    pub async fn revoke_tokens(&self, user_id: i64) -> Result<i64, AccountError> {
        let version = users::bump_token_version(&self.store, user_id).await?;
        self.auth_cache.forget_user(user_id).await;
        Ok(version)
    }

    /// After a change to what the user may do (their grants): every instance forgets them.
    pub async fn forget_cached_user(&self, user_id: i64) {
        self.auth_cache.forget_user(user_id).await;
    }

    /// Checks the current password, sets the new one and revokes every other token; the
    /// caller continues in a fresh session.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &SecretString,
        new: NewPassword,
        origin: &AuditOrigin,
    ) -> Result<Session, AccountError> {
        let user = self.own_account(principal).await?;
        self.limit(
            "login:account",
            &user.username.to_lowercase(),
            LOGIN_PER_ACCOUNT,
        )
        .await?;
        let entry = |action: &str| {
            NewAuditEntry::new(principal.actor.clone(), action)
                .target(format!("user:{}", user.id))
                .origin(origin.clone())
        };
        if !verify_password(current, &user.password_hash).await? {
            self.audit
                .record(entry("auth.password_change_failed"))
                .await?;
            return Err(AccountError::WrongCurrentPassword);
        }
        let hash = hash_password(new).await?;
        users::set_password(&self.store, user.id, &hash).await?;
        let version = self.revoke_tokens(user.id).await?;
        self.audit.record(entry("auth.password_changed")).await?;
        self.issue_session(user.id, version, origin).await
    }

    /// The signed-in user behind `principal` (API keys cannot manage their creator's account).
    async fn own_account(&self, principal: &Principal) -> Result<Credentials, AccountError> {
        match principal.via {
            Via::ApiKey => Err(AccountError::UserOnly),
            Via::AccessToken | Via::Session => {
                users::credentials_by_id(&self.store, principal.user_id)
                    .await?
                    .ok_or(AccountError::Unauthenticated)
            }
        }
    }

    async fn limit(&self, bucket: &str, key: &str, quota: Quota) -> Result<(), AccountError> {
        let decision = self.limiter.hit(bucket, key, quota).await;
        if decision.allowed {
            Ok(())
        } else {
            Err(AccountError::RateLimited {
                retry_after: decision.reset_after,
            })
        }
    }
}

/// The client address as a rate-limit key.
fn client(origin: &AuditOrigin) -> &str {
    origin.ip.as_deref().unwrap_or("unknown")
}

fn user_actor_of(user: &User) -> Actor {
    Actor::User {
        id: user.id,
        username: user.username.clone(),
    }
}

/// A user's grants as audit entries record them (`guild_id` absent for a global grant).
pub(crate) fn grant_details(summary: &UserSummary) -> serde_json::Value {
    serde_json::Value::Array(
        summary
            .roles
            .iter()
            .map(|g| {
                let guild =
                    (g.guild_id != crate::auth::rbac::GLOBAL).then(|| g.guild_id.to_string());
                json!({ "role": g.role, "guild_id": guild })
            })
            .collect(),
    )
}

/// Hashes on the blocking pool, so account changes never stall the executor.
async fn hash_password(password: NewPassword) -> Result<String, AccountError> {
    tokio::task::spawn_blocking(move || password::hash(password.secret()))
        .await
        .map_err(AccountError::internal)?
        .map_err(AccountError::internal)
}

/// Verifies on the blocking pool, so sign-ins never stall the executor. A malformed stored
/// hash verifies nothing.
async fn verify_password(password: &SecretString, stored: &str) -> Result<bool, AccountError> {
    let (password, stored) = (password.clone(), stored.to_owned());
    match tokio::task::spawn_blocking(move || password::verify(&password, &stored))
        .await
        .map_err(AccountError::internal)?
    {
        Ok(ok) => Ok(ok),
        Err(password::PasswordError::MalformedHash) => Ok(false),
        Err(e) => Err(AccountError::internal(e)),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// Polls `work` with a ticker beside it on this single-threaded runtime: argon2 running
    /// inline would finish `work` in its first poll, before the ticker ever ran.
    async fn ticks_while<T>(work: impl std::future::Future<Output = T>) -> (T, u32) {
        let ticks = Cell::new(0);
        let ticker = async {
            loop {
                ticks.set(ticks.get() + 1);
                tokio::task::yield_now().await;
            }
            #[allow(unreachable_code)]
            ()
        };
        let out = tokio::select! {
            biased;
            out = work => out,
            () = ticker => unreachable!("the ticker never ends"),
        };
        (out, ticks.get())
    }

    #[tokio::test]
    async fn hashing_and_verifying_passwords_leave_the_executor_free() {
        let password =
            NewPassword::parse(SecretString::from("correct horse battery staple")).expect("policy");
        let (hash, ticks) = ticks_while(hash_password(password.clone())).await;
        let hash = hash.expect("hash");
        assert!(ticks > 0, "hashing ran on the executor's thread");
        let (ok, ticks) = ticks_while(verify_password(password.secret(), &hash)).await;
        assert!(ok.expect("verify"));
        assert!(ticks > 0, "verifying ran on the executor's thread");
        let (ok, _) = ticks_while(verify_password(password.secret(), "not a PHC string")).await;
        assert!(!ok.expect("a malformed hash verifies nothing"));
    }
}
