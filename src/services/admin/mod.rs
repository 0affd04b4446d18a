//! Administration: dashboard users (create, change grants, disable), invites and the instance
//! settings ([`users`]), roles and their permissions ([`roles`]) and API keys ([`api_keys`]).
//! The `/api/v1` routes and the `/admin` pages call these same functions, so the same checks
//! apply to both: nobody hands out more than they hold, the last administrator stays, and every
//! change is in the audit log before it is acknowledged.

pub mod api_keys;
pub mod roles;
pub mod users;

use secrecy::SecretString;

use crate::actors::audit::{AuditError, AuditLog};
use crate::auth::authenticate::Principal;
use crate::auth::cache::AuthCache;
use crate::auth::lockout;
use crate::domain::audit::AuditOrigin;
use crate::services::accounts::{AccountError, Accounts};
use crate::store::audit::NewAuditEntry;
use crate::store::{Store, StoreError};

pub use api_keys::{CreatedKey, NewKey};
pub use roles::{NewRole, RoleChange};
pub use users::{GrantRequest, NewInvite, NewUser, UserChange};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A field of the request is not acceptable; `field` is the request's name for it
    /// (`roles[2].role`), so that the API and the page can point at it.
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
    /// The caller would hand out (or change) more than they hold.
    #[error("you do not have permission to do this")]
    NotAllowed,
    #[error("user {0} does not exist")]
    UnknownUser(i64),
    #[error("role {0} does not exist")]
    UnknownRole(i64),
    /// Also the answer for someone else's key, so that its existence is not revealed.
    #[error("no such API key")]
    UnknownKey,
    #[error("{}", lockout::REFUSAL)]
    LastAdministrator,
    #[error("the admin role always holds every permission")]
    AdminRoleIsFixed,
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The action was not confirmed because its audit entry could not be written.
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AdminError {
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        AdminError::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Who acts: the authenticated principal (whose grants bound what they may hand out) and where
/// the request came from (for the audit entry). The API builds it from its `Auth`, a page from
/// its `SignedIn`.
pub struct Acting<'a> {
    pub principal: &'a Principal,
    pub origin: &'a AuditOrigin,
}

impl<'a> Acting<'a> {
    pub fn new(principal: &'a Principal, origin: &'a AuditOrigin) -> Self {
        Acting { principal, origin }
    }

    pub fn origin(&self) -> &AuditOrigin {
        self.origin
    }

    /// An audit entry by this caller, with the request's origin attached.
    pub fn entry(&self, action: &str) -> NewAuditEntry {
        NewAuditEntry::new(self.principal.actor.clone(), action).origin(self.origin.clone())
    }
}

impl std::ops::Deref for Acting<'_> {
    type Target = Principal;

    fn deref(&self) -> &Self::Target {
        self.principal
    }
}

/// Users, roles and API keys, with everything they depend on.
#[derive(Clone)]
pub struct AdminService {
    store: Store,
    audit: AuditLog,
    auth_cache: AuthCache,
    accounts: Accounts,
    /// Keys API keys and invites are hashed with.
    secret_key: SecretString,
}

impl AdminService {
    pub fn new(
        store: Store,
        audit: AuditLog,
        auth_cache: AuthCache,
        accounts: Accounts,
        secret_key: SecretString,
    ) -> Self {
        Self {
            store,
            audit,
            auth_cache,
            accounts,
            secret_key,
        }
    }
}

/// A bounded text field without control characters, naming the field when it is not.
fn text<'a>(field: &str, value: &'a str, min: usize, max: usize) -> Result<&'a str, AdminError> {
    crate::types::check_text(value, min, max)
        .map_err(|problem| AdminError::invalid(field, problem))?;
    Ok(value)
}
