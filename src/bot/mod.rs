//! The Discord bot: gateway events become commands that call the same services and actors as
//! the web handlers. Populated by the Discord issue; the gateway actor already reports whether
//! the bot is configured.
