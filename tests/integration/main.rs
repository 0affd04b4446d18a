//! One integration-test binary (one link) holding every suite as a module.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod actors;
mod audit;
mod auth;
mod binary;
mod browser;
mod compression;
mod dash_pages;
mod deploy;
mod discord;
mod error_codes;
mod faults;
mod headers;
mod http;
mod mfa;
mod minecraft;
mod minecraft_policy;
mod monitoring;
mod origin;
mod pages;
mod route_table;
mod routes;
mod settings;
mod shared_state;
mod ws;
