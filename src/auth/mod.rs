//! Authentication and authorisation primitives.

pub mod password;
pub mod rbac;
