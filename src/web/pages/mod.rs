//! Server-rendered dashboard pages (Sailfish).

pub mod index;
pub mod sparkline;
