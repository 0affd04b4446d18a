//! The JSON API under `/api/v1`. Each resource module exposes `configure(cfg)` and is mounted
//! here, inside the `/api/v1` scope. Mount every route through `extract::declare` (see there).

// The Discord resources (issue 4).
pub mod bot;
pub mod guilds;
pub mod moderation;
pub mod settings;

use actix_web::web;

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod minecraft;
pub mod minecraft_links;
pub mod roles;
pub mod users;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(auth::configure);
    cfg.configure(users::configure);
    cfg.configure(roles::configure);
    cfg.configure(api_keys::configure);
    cfg.configure(audit::configure);
    cfg.configure(bot::configure);
    cfg.configure(settings::configure);
    cfg.configure(guilds::configure);
    cfg.configure(moderation::configure);
    cfg.configure(minecraft::configure);
    cfg.configure(minecraft_links::configure);
}

/// Every module's OpenAPI paths, merged into `/api/openapi.json` (one line per module).
pub fn docs() -> Vec<utoipa::openapi::OpenApi> {
    use utoipa::OpenApi;
    vec![
        auth::Doc::openapi(),
        users::Doc::openapi(),
        roles::Doc::openapi(),
        api_keys::Doc::openapi(),
        audit::Doc::openapi(),
        bot::Doc::openapi(),
        settings::Doc::openapi(),
        guilds::Doc::openapi(),
        moderation::Doc::openapi(),
        minecraft::Doc::openapi(),
        minecraft_links::Doc::openapi(),
    ]
}
