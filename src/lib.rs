//! guildhall: a self-hosted Discord bot and dashboard daemon with a Minecraft RCON bridge.
//! The binary (`src/main.rs`) and the integration tests share this library.

pub mod actors;
pub mod auth;
pub mod bot;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod history;
pub mod ids;
pub mod metrics;
pub mod minecraft;
pub mod private_fs;
pub mod secrets;
pub mod services;
pub mod shared;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod types;
pub mod web;
