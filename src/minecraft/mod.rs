//! The Minecraft bridge: servers reached over RCON, the command policy, player lists and
//! scheduled commands. `MinecraftService` is the entry point for the API, the dashboard and the
//! Discord bot; `actors::rcon::RconActor` owns each server's connection.

pub mod command;
pub mod command_path;
pub mod crypto;
pub mod links;
pub mod links_sync;
pub mod links_whitelist;
pub mod players;
pub mod policy;
pub mod registry;
pub mod schedule;
pub mod service;

pub use command::{RconCommand, ServerName};
pub use service::{Caller, CommandResponse, MinecraftError, MinecraftService};
