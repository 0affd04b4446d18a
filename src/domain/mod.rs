//! Validated types every layer shares: Discord snowflakes, moderation actions and their input,
//! guild settings and modules, and the origin of an audited action. Owned by neither the bot
//! nor the web layer; parse at the edge into these types, trust them inside.

pub mod audit;
pub mod moderation;
pub mod settings;
pub mod snowflake;

pub use snowflake::Snowflake;
