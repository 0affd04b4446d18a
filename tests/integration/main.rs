//! One integration-test binary (one link) holding every suite as a module.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod actors;
mod audit;
mod auth;
mod binary;
mod discord;
mod http;
mod routes;
mod shared_state;
