//! Services shared by the bot's commands and the web handlers, so that an action started from
//! Discord and one started from the dashboard run the same code.

pub mod accounts;
pub mod admin;
pub mod discord;
pub mod discord_access;
pub mod discord_sign_in;
pub mod guild_config;
pub mod moderation;
