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

/// Who acts, for handler bodies shared by an API route and a dashboard page: the
/// authenticated principal and where the request came from. The API builds it from
/// [`crate::web::extract::Auth`], a page from its `SignedIn`.
pub struct Acting<'a> {
    pub principal: &'a crate::auth::authenticate::Principal,
    pub origin: &'a crate::domain::audit::AuditOrigin,
}

impl<'a> Acting<'a> {
    pub fn new(
        principal: &'a crate::auth::authenticate::Principal,
        origin: &'a crate::domain::audit::AuditOrigin,
    ) -> Self {
        Acting { principal, origin }
    }

    pub fn origin(&self) -> &crate::domain::audit::AuditOrigin {
        self.origin
    }

    /// An audit entry by this caller, with the request's origin attached.
    pub fn entry(&self, action: &str) -> crate::store::audit::NewAuditEntry {
        crate::store::audit::NewAuditEntry::new(self.principal.actor.clone(), action)
            .origin(self.origin.clone())
    }
}

impl std::ops::Deref for Acting<'_> {
    type Target = crate::auth::authenticate::Principal;

    fn deref(&self) -> &Self::Target {
        self.principal
    }
}
