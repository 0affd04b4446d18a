//! The JSON API under `/api/v1`. Each resource module exposes `configure(cfg)` and is mounted
//! here, inside the `/api/v1` scope.

use actix_web::web;

pub fn configure(_cfg: &mut web::ServiceConfig) {}
