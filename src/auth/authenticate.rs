//! Authentication: a credential in (an access token, an API key, a session cookie), the
//! principal with its grants out. The API's access check, the pages and the WebSocket
//! handshakes all call [`Authenticator::authenticate`]; reading the credential off a request is
//! the web layer's job (`web::extract`).
//!
//! The hot path touches no database: users, keys and verified tokens come from the
//! [`AuthCache`], which every change to them invalidates.

use std::sync::Arc;

use secrecy::SecretString;

use super::api_keys;
use super::cache::{AuthCache, UserAuth};
use super::rbac::Grants;
use super::tokens::{self, TokenType};
use crate::store::audit::Actor;
use crate::store::{Store, StoreError, api_keys as key_store, roles, users};

/// A credential as the caller presented it.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// `Authorization: Bearer …`: an access token, or an API key (told apart by their shape).
    Bearer(&'a str),
    /// `X-API-Key: …`.
    ApiKey(&'a str),
    /// The dashboard's session cookie, and what the request does with it.
    Session { token: &'a str, intent: Intent<'a> },
}

/// What a session-cookie request does: changing state needs the session's CSRF token, so a
/// cross-site form riding on the cookie cannot.
#[derive(Debug, Clone, Copy)]
pub enum Intent<'a> {
    Read,
    /// The `X-CSRF-Token` the request carried, if any.
    Change {
        csrf: Option<&'a str>,
    },
}

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    AccessToken,
    /// The dashboard cookie; state-changing requests also carry the CSRF token.
    Session,
    ApiKey,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub actor: Actor,
    /// The user, or the user who created the key.
    pub user_id: i64,
    /// The user's name (for a key: its creator's).
    pub username: String,
    pub grants: Arc<Grants>,
    pub via: Via,
    /// Of the user (for a key: of its creator).
    pub mfa_enabled: bool,
    pub mfa_required: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Missing, malformed, expired or revoked: one answer, so nothing about the credential leaks.
    #[error("authentication required")]
    Unauthenticated,
    #[error("X-CSRF-Token: missing or does not match the session")]
    CsrfFailed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What authentication depends on.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    cache: AuthCache,
    jwt_secret_key: SecretString,
    secret_key: SecretString,
}

impl Authenticator {
    pub fn new(
        store: Store,
        cache: AuthCache,
        jwt_secret_key: SecretString,
        secret_key: SecretString,
    ) -> Self {
        Self {
            store,
            cache,
            jwt_secret_key,
            secret_key,
        }
    }

    /// The principal behind `credential`. Any credential that is present but invalid is
    /// refused, never treated as absent.
    pub async fn authenticate(&self, credential: Credential<'_>) -> Result<Principal, AuthError> {
        match credential {
            Credential::Bearer(token) if api_keys::looks_like_key(token) => {
                self.by_api_key(token).await
            }
            Credential::Bearer(token) => self.by_token(token, TokenType::Access, None).await,
            Credential::ApiKey(key) => self.by_api_key(key).await,
            Credential::Session { token, intent } => {
                let csrf = match intent {
                    Intent::Read => None,
                    Intent::Change { csrf } => Some(csrf.unwrap_or_default()),
                };
                self.by_token(token, TokenType::Session, csrf).await
            }
        }
    }

    async fn by_token(
        &self,
        token: &str,
        typ: TokenType,
        csrf: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let claims = match self.cache.verified_token(token) {
            Some(claims) if claims.typ == typ && tokens::is_current(&claims) => claims,
            Some(_) => return Err(AuthError::Unauthenticated),
            None => {
                let claims = tokens::verify(&self.jwt_secret_key, token, typ)
                    .map_err(|_| AuthError::Unauthenticated)?;
                self.cache.put_verified_token(token, claims)
            }
        };
        if let Some(presented) = csrf {
            let expected = claims.csrf.as_deref().unwrap_or_default();
            if !super::csrf::matches(presented, expected) {
                return Err(AuthError::CsrfFailed);
            }
        }
        let user_id = claims.user_id().ok_or(AuthError::Unauthenticated)?;
        let user = self
            .user(user_id)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        if user.disabled || user.token_version != claims.ver {
            return Err(AuthError::Unauthenticated);
        }
        Ok(Principal {
            actor: Actor::User {
                id: user.id,
                username: user.username.clone(),
            },
            user_id: user.id,
            username: user.username.clone(),
            grants: Arc::clone(&user.grants),
            via: if typ == TokenType::Session {
                Via::Session
            } else {
                Via::AccessToken
            },
            mfa_enabled: user.mfa_enabled,
            mfa_required: user.mfa_required,
        })
    }

    /// The CSRF token a valid session cookie carries, for the dashboard to put in its forms.
    /// The token was verified when the request was authenticated, so this reads the cache.
    pub fn session_csrf(&self, token: &str) -> Option<String> {
        let claims = match self.cache.verified_token(token) {
            Some(claims) => claims,
            None => Arc::new(tokens::verify(&self.jwt_secret_key, token, TokenType::Session).ok()?),
        };
        (claims.typ == TokenType::Session)
            .then(|| claims.csrf.clone())
            .flatten()
    }

    /// A user as authentication sees it: from the cache, else from the database (then cached).
    pub async fn user(&self, id: i64) -> Result<Option<Arc<UserAuth>>, StoreError> {
        if let Some(user) = self.cache.user(id) {
            return Ok(Some(user));
        }
        let epoch = self.cache.user_epoch();
        let Some(c) = users::credentials_by_id(&self.store, id).await? else {
            return Ok(None);
        };
        let grants = roles::grants_of(&self.store, c.id, c.mfa_enabled).await?;
        let mfa_required = !c.mfa_enabled && roles::mfa_required_for(&self.store, c.id).await?;
        Ok(Some(self.cache.put_user(
            epoch,
            UserAuth {
                id: c.id,
                username: c.username,
                token_version: c.token_version,
                disabled: c.disabled,
                mfa_enabled: c.mfa_enabled,
                mfa_required,
                grants: Arc::new(grants),
            },
        )))
    }

    async fn by_api_key(&self, raw: &str) -> Result<Principal, AuthError> {
        let presented = api_keys::parse(raw).ok_or(AuthError::Unauthenticated)?;
        let epoch = self.cache.key_epoch();
        let key = match self.cache.key(presented.prefix) {
            Some(k) => k,
            None => match key_store::find_by_prefix(&self.store, presented.prefix).await? {
                Some(k) => self.cache.put_key(epoch, k),
                None => return Err(AuthError::Unauthenticated),
            },
        };
        let now = crate::ids::now_ms();
        if !presented.matches(&self.secret_key, &key.secret_hash)
            || key.revoked_at.is_some()
            || key.expires_at.is_some_and(|t| t <= now)
        {
            return Err(AuthError::Unauthenticated);
        }
        let creator = self
            .user(key.user_id)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        if creator.disabled {
            return Err(AuthError::Unauthenticated);
        }
        let grants = creator.grants.restrict(&key.permissions, key.guild_id);
        if key
            .last_used_at
            .is_none_or(|t| now - t >= key_store::TOUCH_INTERVAL_MS)
        {
            match key_store::touch(&self.store, &key).await {
                Ok(()) => {
                    let mut touched = (*key).clone();
                    touched.last_used_at = Some(now);
                    self.cache.put_key(epoch, touched);
                }
                // Bookkeeping only: a failed write must not fail the request.
                Err(e) => {
                    tracing::warn!(api_key = key.id, error = ?e, "could not record API key use");
                }
            }
        }
        Ok(Principal {
            actor: Actor::ApiKey {
                id: key.id,
                name: key.name.clone(),
                user_id: key.user_id,
            },
            user_id: key.user_id,
            username: creator.username.clone(),
            grants: Arc::new(grants),
            via: Via::ApiKey,
            mfa_enabled: creator.mfa_enabled,
            mfa_required: creator.mfa_required,
        })
    }
}
