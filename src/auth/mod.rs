//! Authentication and authorisation primitives.

pub mod api_keys;
pub mod authenticate;
pub mod cache;
pub mod csrf;
pub mod digest;
pub mod discord_access;
pub mod discord_oauth;
pub mod lockout;
pub mod password;
pub mod rbac;
pub mod tokens;
pub mod totp;
