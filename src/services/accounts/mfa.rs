//! TOTP enrolment (start, then confirm with a first code) and its removal. Confirming and
//! removing both revoke every earlier token and continue in exactly one new session.

use secrecy::SecretString;

use super::{AccountError, Accounts, MFA_PER_ACCOUNT, Session, verify_password};
use crate::auth::authenticate::Principal;
use crate::auth::totp;
use crate::domain::audit::AuditOrigin;
use crate::store::audit::NewAuditEntry;
use crate::store::users;

/// What the user needs to add the account to an authenticator app.
pub struct Enrolment {
    /// Base32, for manual entry.
    pub secret: String,
    pub otpauth_url: String,
    pub qr_png_base64: String,
}

/// Where the caller's account stands with MFA, for the dashboard's account page.
pub enum MfaState {
    Off,
    /// Enrolment started and not confirmed yet: the secret for manual entry (the QR code is
    /// [`Accounts::mfa_enrolment_qr_png`]).
    Pending {
        secret: String,
    },
    On,
}

/// MFA is on: the recovery codes (shown only now) and the session that replaces every earlier one.
pub struct Enabled {
    pub recovery_codes: Vec<String>,
    pub session: Session,
}

impl Accounts {
    /// Starts (or restarts) enrolment: a new secret, kept but not yet required.
    pub async fn start_mfa_enrolment(
        &self,
        principal: &Principal,
        origin: &AuditOrigin,
    ) -> Result<Enrolment, AccountError> {
        let user = self.own_account(principal).await?;
        if user.mfa_enabled {
            return Err(AccountError::MfaAlreadyEnabled);
        }
        let secret = totp::new_secret();
        let enrolment = totp::enrolment(&secret, &user.username).map_err(AccountError::internal)?;
        users::set_pending_mfa_secret(&self.store, user.id, &secret).await?;
        self.audit
            .record(
                NewAuditEntry::new(principal.actor.clone(), "auth.mfa_enrolment_started")
                    .target(format!("user:{}", user.id))
                    .origin(origin.clone()),
            )
            .await?;
        Ok(Enrolment {
            secret,
            otpauth_url: enrolment.otpauth_url,
            qr_png_base64: enrolment.qr_png_base64,
        })
    }

    /// Whether MFA is off, being enrolled or on for the caller's own account.
    pub async fn mfa_state(&self, principal: &Principal) -> Result<MfaState, AccountError> {
        let user = self.own_account(principal).await?;
        Ok(match (user.mfa_enabled, user.mfa_secret) {
            (true, _) => MfaState::On,
            (false, Some(secret)) => MfaState::Pending { secret },
            (false, None) => MfaState::Off,
        })
    }

    /// The QR code of the enrolment in progress as a PNG, so the dashboard can show it as an
    /// image from guildhall itself. A read: no audit entry, the secret stays where it is.
    pub async fn mfa_enrolment_qr_png(
        &self,
        principal: &Principal,
    ) -> Result<Vec<u8>, AccountError> {
        let user = self.own_account(principal).await?;
        if user.mfa_enabled {
            return Err(AccountError::MfaAlreadyEnabled);
        }
        let secret = user.mfa_secret.ok_or(AccountError::MfaNotStarted)?;
        totp::qr_png(&secret, &user.username).map_err(AccountError::internal)
    }

    /// Confirms enrolment with a first code: MFA is required from now on, every earlier token
    /// is revoked, and the caller continues in one new session.
    pub async fn confirm_mfa_enrolment(
        &self,
        principal: &Principal,
        code: &str,
        origin: &AuditOrigin,
    ) -> Result<Enabled, AccountError> {
        let user = self.own_account(principal).await?;
        if user.mfa_enabled {
            return Err(AccountError::MfaAlreadyEnabled);
        }
        if user.mfa_secret.is_none() {
            return Err(AccountError::MfaNotStarted);
        }
        self.limit("mfa:account", &user.id.to_string(), MFA_PER_ACCOUNT)
            .await?;
        if !self.check_second_factor(&user, code, false).await? {
            return Err(AccountError::InvalidCode);
        }
        let recovery_codes = totp::new_recovery_codes();
        let hashes: Vec<String> = recovery_codes
            .iter()
            .map(|c| totp::recovery_digest(&self.keys.secret_key, c))
            .collect();
        users::enable_mfa(&self.store, user.id, &hashes).await?;
        let version = self.revoke_tokens(user.id).await?;
        self.audit
            .record(
                NewAuditEntry::new(principal.actor.clone(), "auth.mfa_enabled")
                    .target(format!("user:{}", user.id))
                    .origin(origin.clone()),
            )
            .await?;
        let session = self.issue_session(user.id, version, origin).await?;
        Ok(Enabled {
            recovery_codes,
            session,
        })
    }

    /// Turns MFA off, given the password and a TOTP code or an unused recovery code; every
    /// earlier token is revoked and the caller continues in one new session.
    pub async fn disable_mfa(
        &self,
        principal: &Principal,
        password: &SecretString,
        code: &str,
        origin: &AuditOrigin,
    ) -> Result<Session, AccountError> {
        let user = self.own_account(principal).await?;
        if !user.mfa_enabled {
            return Err(AccountError::MfaNotEnabled);
        }
        self.limit("mfa:account", &user.id.to_string(), MFA_PER_ACCOUNT)
            .await?;
        if !verify_password(password, &user.password_hash).await? {
            return Err(AccountError::WrongPassword);
        }
        if !self.check_second_factor(&user, code, true).await? {
            return Err(AccountError::InvalidCode);
        }
        users::disable_mfa(&self.store, user.id).await?;
        let version = self.revoke_tokens(user.id).await?;
        self.audit
            .record(
                NewAuditEntry::new(principal.actor.clone(), "auth.mfa_disabled")
                    .target(format!("user:{}", user.id))
                    .origin(origin.clone()),
            )
            .await?;
        self.issue_session(user.id, version, origin).await
    }
}
