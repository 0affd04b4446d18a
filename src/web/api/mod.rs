//! The JSON API under `/api/v1`. Each resource module exposes `configure(cfg)` and is mounted
//! here, inside the `/api/v1` scope. Mount every route through `extract::declare` (see there).

use actix_web::web;

pub mod auth;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(auth::configure);
}
