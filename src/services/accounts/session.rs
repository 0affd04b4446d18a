//! Signing in, refreshing and signing out; [`Accounts::issue_session`] is the one place a session
//! (access token, refresh family, cookie value and the CSRF token they share) comes to be.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;

use super::{
    AccountError, Accounts, LOGIN_PER_ACCOUNT, LOGIN_PER_IP, MFA_PER_ACCOUNT, MFA_PER_IP,
    REFRESH_PER_ACCOUNT, REFRESH_PER_IP, client, verify_password,
};
use crate::auth::authenticate::Principal;
use crate::auth::tokens::{self, Extra, TokenType};
use crate::auth::{digest, password, totp};
use crate::domain::audit::AuditOrigin;
use crate::store::audit::{Actor, NewAuditEntry};
use crate::store::refresh_tokens;
use crate::store::users::{self, Credentials};

const REFRESH_DOMAIN: &str = "refresh_token";
const CSRF_TOKEN_LEN: usize = 32;

/// Tokens for API clients.
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: Duration,
    pub refresh_expires_in: Duration,
}

/// A new session: tokens for API clients, and for the dashboard the session cookie's value and
/// the CSRF token it carries (which state-changing requests made with the cookie must echo).
pub struct Session {
    pub tokens: Tokens,
    pub csrf_token: String,
    pub cookie_value: String,
    pub cookie_max_age: Duration,
}

/// The outcome of a correct password.
pub enum SignIn {
    Session(Session),
    /// MFA is enabled: continue with [`Accounts::sign_in_second_factor`] and this token.
    SecondFactorNeeded {
        mfa_token: String,
        expires_in: Duration,
    },
}

/// The second step of a sign-in with MFA.
#[derive(Debug, Clone, Copy)]
pub enum SecondFactor<'a> {
    Totp(&'a str),
    RecoveryCode(&'a str),
}

fn user_actor(user: &Credentials) -> Actor {
    Actor::User {
        id: user.id,
        username: user.username.clone(),
    }
}

impl Accounts {
    /// Issues an access token, a new refresh family and a session cookie value, all for
    /// `token_version`, sharing one CSRF token.
    pub async fn issue_session(
        &self,
        user_id: i64,
        token_version: i64,
        origin: &AuditOrigin,
    ) -> Result<Session, AccountError> {
        let key = &self.keys.jwt_secret_key;
        let (access_token, _) = tokens::issue(
            key,
            TokenType::Access,
            user_id,
            token_version,
            tokens::ACCESS_TTL,
            Extra::default(),
        )
        .map_err(AccountError::internal)?;
        let family = crate::ids::next_id();
        let (refresh_token, claims) = tokens::issue(
            key,
            TokenType::Refresh,
            user_id,
            token_version,
            tokens::REFRESH_TTL,
            Extra {
                family: Some(family),
                ..Extra::default()
            },
        )
        .map_err(AccountError::internal)?;
        let csrf_token = digest::random_string(digest::ALPHANUMERIC, CSRF_TOKEN_LEN);
        let (cookie_value, _) = tokens::issue(
            key,
            TokenType::Session,
            user_id,
            token_version,
            tokens::SESSION_TTL,
            Extra {
                csrf: Some(csrf_token.clone()),
                ..Extra::default()
            },
        )
        .map_err(AccountError::internal)?;
        let hash = digest::keyed(&self.keys.secret_key, REFRESH_DOMAIN, &refresh_token);
        refresh_tokens::create(
            &self.store,
            refresh_tokens::NewFamily {
                id: family,
                user_id,
                token_hash: &hash,
                token_version,
                ip: origin.ip.as_deref(),
                user_agent: origin.user_agent.as_deref(),
                expires_at: i64::try_from(claims.exp)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1000),
            },
        )
        .await?;
        Ok(Session {
            tokens: Tokens {
                access_token,
                refresh_token,
                expires_in: tokens::ACCESS_TTL,
                refresh_expires_in: tokens::REFRESH_TTL,
            },
            csrf_token,
            cookie_value,
            cookie_max_age: tokens::SESSION_TTL,
        })
    }

    /// Signs in with a username and password (rate-limited per client and per account).
    /// Every failure gives the same answer and is audited.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &SecretString,
        origin: &AuditOrigin,
    ) -> Result<SignIn, AccountError> {
        self.limit("login:ip", client(origin), LOGIN_PER_IP).await?;
        self.limit("login:account", &username.to_lowercase(), LOGIN_PER_ACCOUNT)
            .await?;
        let user = users::credentials_by_username(&self.store, username).await?;
        // Always one argon2 verification, so unknown users and wrong passwords look alike.
        let stored = match &user {
            Some(u) => u.password_hash.clone(),
            None => password::UNKNOWN_USER_HASH.to_owned(),
        };
        let password_ok = verify_password(password, &stored).await?;
        let user = match user {
            Some(u) if password_ok && !u.disabled => u,
            other => {
                let (actor, reason) = match &other {
                    Some(u) if u.disabled => (user_actor(u), "disabled"),
                    Some(u) => (user_actor(u), "wrong_password"),
                    None => (Actor::System, "unknown_user"),
                };
                self.audit
                    .record(
                        NewAuditEntry::new(actor, "auth.login_failed")
                            .details(json!({ "username": username, "reason": reason }))
                            .origin(origin.clone()),
                    )
                    .await?;
                return Err(AccountError::Unauthenticated);
            }
        };
        self.second_factor_or_session(&user, origin, json!({}))
            .await
    }

    /// Signs in a user whose identity another party vouched for (Discord's OAuth2): no
    /// password, but the same second factor when enrolled and the same session otherwise.
    /// `details` go into the `auth.login` entry (e.g. `{"via": "discord"}`).
    pub async fn sign_in_verified(
        &self,
        user_id: i64,
        details: serde_json::Value,
        origin: &AuditOrigin,
    ) -> Result<SignIn, AccountError> {
        let user = users::credentials_by_id(&self.store, user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(AccountError::Unauthenticated)?;
        self.second_factor_or_session(&user, origin, details).await
    }

    /// The second step of a sign-in with MFA: the challenge token from [`Accounts::sign_in`]
    /// and a TOTP code or a recovery code.
    pub async fn sign_in_second_factor(
        &self,
        mfa_token: &str,
        factor: SecondFactor<'_>,
        origin: &AuditOrigin,
    ) -> Result<Session, AccountError> {
        self.limit("mfa:ip", client(origin), MFA_PER_IP).await?;
        let claims = tokens::verify(
            &self.keys.jwt_secret_key,
            mfa_token,
            TokenType::MfaChallenge,
        )
        .map_err(|_| AccountError::Unauthenticated)?;
        let user_id = claims.user_id().ok_or(AccountError::Unauthenticated)?;
        self.limit("mfa:account", &user_id.to_string(), MFA_PER_ACCOUNT)
            .await?;
        let user = users::credentials_by_id(&self.store, user_id)
            .await?
            .filter(|u| !u.disabled && u.mfa_enabled && u.token_version == claims.ver)
            .ok_or(AccountError::Unauthenticated)?;
        let ok = match factor {
            SecondFactor::Totp(code) => self.check_second_factor(&user, code, false).await?,
            SecondFactor::RecoveryCode(code) => {
                let hash = totp::recovery_digest(&self.keys.secret_key, code);
                users::use_recovery_code(&self.store, user.id, &hash).await?
            }
        };
        let recovery = matches!(factor, SecondFactor::RecoveryCode(_));
        if !ok {
            self.audit
                .record(
                    NewAuditEntry::new(user_actor(&user), "auth.login_failed")
                        .details(json!({ "reason": "invalid_mfa_code", "recovery": recovery }))
                        .origin(origin.clone()),
                )
                .await?;
            return Err(AccountError::InvalidCode);
        }
        let second_factor = if recovery { "recovery_code" } else { "totp" };
        self.signed_in(&user, origin, json!({ "mfa": second_factor }))
            .await
    }

    /// A verified first factor: a challenge for the second when the user enrolled one, otherwise
    /// the session.
    async fn second_factor_or_session(
        &self,
        user: &Credentials,
        origin: &AuditOrigin,
        details: serde_json::Value,
    ) -> Result<SignIn, AccountError> {
        if user.mfa_enabled {
            let (mfa_token, _) = tokens::issue(
                &self.keys.jwt_secret_key,
                TokenType::MfaChallenge,
                user.id,
                user.token_version,
                tokens::MFA_CHALLENGE_TTL,
                Extra::default(),
            )
            .map_err(AccountError::internal)?;
            return Ok(SignIn::SecondFactorNeeded {
                mfa_token,
                expires_in: tokens::MFA_CHALLENGE_TTL,
            });
        }
        self.signed_in(user, origin, details)
            .await
            .map(SignIn::Session)
    }

    /// The end of every successful sign-in (password alone, or password then second factor):
    /// the audit entry is committed before the session exists, so no session lacks its entry.
    async fn signed_in(
        &self,
        user: &Credentials,
        origin: &AuditOrigin,
        details: serde_json::Value,
    ) -> Result<Session, AccountError> {
        self.audit
            .record(
                NewAuditEntry::new(user_actor(user), "auth.login")
                    .target(format!("user:{}", user.id))
                    .details(details)
                    .origin(origin.clone()),
            )
            .await?;
        self.issue_session(user.id, user.token_version, origin)
            .await
    }

    /// Exchanges a refresh token for a new access token and the family's next refresh token.
    /// A rotated-out token coming back means it leaked: the whole family is revoked.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        origin: &AuditOrigin,
    ) -> Result<Tokens, AccountError> {
        self.limit("refresh:ip", client(origin), REFRESH_PER_IP)
            .await?;
        let claims = tokens::verify(&self.keys.jwt_secret_key, refresh_token, TokenType::Refresh)
            .map_err(|_| AccountError::Unauthenticated)?;
        let (user_id, family_id) = claims
            .user_id()
            .zip(claims.fam)
            .ok_or(AccountError::Unauthenticated)?;
        self.limit("refresh:account", &user_id.to_string(), REFRESH_PER_ACCOUNT)
            .await?;
        let family = refresh_tokens::find(&self.store, family_id)
            .await?
            .filter(|f| f.user_id == user_id)
            .ok_or(AccountError::Unauthenticated)?;
        if family.revoked_at.is_some() || family.expires_at <= crate::ids::now_ms() {
            return Err(AccountError::Unauthenticated);
        }
        let secret_key = &self.keys.secret_key;
        let presented = digest::keyed(secret_key, REFRESH_DOMAIN, refresh_token);
        let user = users::credentials_by_id(&self.store, user_id)
            .await?
            .ok_or(AccountError::Unauthenticated)?;
        let is_current = digest::matches(
            secret_key,
            REFRESH_DOMAIN,
            refresh_token,
            &family.current_token_hash,
        );
        if !is_current {
            refresh_tokens::revoke(&self.store, family.id).await?;
            self.audit
                .record(
                    NewAuditEntry::new(user_actor(&user), "auth.refresh_reuse")
                        .target(format!("refresh_family:{}", family.id))
                        .origin(origin.clone()),
                )
                .await?;
            return Err(AccountError::Unauthenticated);
        }
        if user.disabled || user.token_version != claims.ver || family.token_version != claims.ver {
            return Err(AccountError::Unauthenticated);
        }
        let key = &self.keys.jwt_secret_key;
        let (new_refresh, _) = tokens::issue(
            key,
            TokenType::Refresh,
            user.id,
            user.token_version,
            tokens::REFRESH_TTL,
            Extra {
                family: Some(family.id),
                ..Extra::default()
            },
        )
        .map_err(AccountError::internal)?;
        let new_hash = digest::keyed(secret_key, REFRESH_DOMAIN, &new_refresh);
        if !refresh_tokens::rotate(&self.store, family.id, &presented, &new_hash).await? {
            // Lost a race with another use of the same token: treat as reuse.
            refresh_tokens::revoke(&self.store, family.id).await?;
            return Err(AccountError::Unauthenticated);
        }
        let (access_token, _) = tokens::issue(
            key,
            TokenType::Access,
            user.id,
            user.token_version,
            tokens::ACCESS_TTL,
            Extra::default(),
        )
        .map_err(AccountError::internal)?;
        Ok(Tokens {
            access_token,
            refresh_token: new_refresh,
            expires_in: tokens::ACCESS_TTL,
            refresh_expires_in: tokens::REFRESH_TTL,
        })
    }

    /// Signs the caller out everywhere: every token of the user is revoked.
    pub async fn sign_out(
        &self,
        principal: &Principal,
        origin: &AuditOrigin,
    ) -> Result<(), AccountError> {
        let user = self.own_account(principal).await?;
        self.revoke_tokens(user.id).await?;
        self.audit
            .record(
                NewAuditEntry::new(principal.actor.clone(), "auth.logout")
                    .target(format!("user:{}", user.id))
                    .origin(origin.clone()),
            )
            .await?;
        Ok(())
    }

    /// Checks a TOTP code (replay refused) or, when allowed, spends a recovery code.
    pub(super) async fn check_second_factor(
        &self,
        user: &Credentials,
        code: &str,
        allow_recovery: bool,
    ) -> Result<bool, AccountError> {
        let secret = user.mfa_secret.as_deref().ok_or_else(|| {
            AccountError::internal(anyhow::anyhow!("MFA enabled without a secret"))
        })?;
        let now = jsonwebtoken::get_current_timestamp();
        let step = totp::check(secret, code.trim(), now, user.mfa_last_step)
            .map_err(AccountError::internal)?;
        if let Some(step) = step {
            return Ok(users::advance_mfa_step(&self.store, user.id, step).await?);
        }
        if allow_recovery && code.trim().len() > 6 {
            let hash = totp::recovery_digest(&self.keys.secret_key, code);
            return Ok(users::use_recovery_code(&self.store, user.id, &hash).await?);
        }
        Ok(false)
    }
}
