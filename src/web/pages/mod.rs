//! Server-rendered dashboard pages (Sailfish templates, HTMX as an enhancement).
//!
//! The framework: [`page::SignedIn`] (the signed-in caller, through the API's authentication
//! function; signed-out visitors go to sign-in and come back), [`form::PageForm`] (a posted
//! form with its CSRF token checked), [`form::FieldErrors`] (errors beside their fields),
//! [`flash`] (a note shown once after a redirect), [`nav`] (the sections each user may see) and
//! [`page::Chrome`], the layout's data. See `docs/architecture.md` ("Pages").
//! Page handlers call the same service functions as the API routes, never a copy.

pub mod account;
pub mod account_discord;
pub mod admin;
pub mod audit;
pub mod flash;
pub mod form;
pub mod guilds;
pub mod index;
pub mod logs;
pub mod minecraft;
pub mod minecraft_links;
pub mod nav;
pub mod page;
pub mod sign_in;
pub mod sparkline;
pub mod time;

pub use flash::Flash;
pub use form::{FieldErrors, PageForm};
pub use page::{Chrome, PageError, PageResult, SignedIn};

use actix_web::web;

/// The dashboard's routes (mounted at the root, beside the API scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(index::overview)))
        .service(web::resource("/overview/status").route(web::get().to(index::status_fragment)))
        .service(
            web::resource(page::SIGN_IN_PATH)
                .route(web::get().to(sign_in::form))
                .route(web::post().to(sign_in::submit)),
        )
        .service(web::resource("/sign-in/mfa").route(web::post().to(sign_in::second_factor)))
        .service(web::resource("/sign-out").route(web::post().to(sign_in::sign_out)))
        .service(web::resource("/audit").route(web::get().to(audit::list)))
        .service(web::resource("/audit/rows").route(web::get().to(audit::more)))
        .service(web::resource("/audit/export").route(web::get().to(audit::export)))
        .service(web::resource("/audit/{id}").route(web::get().to(audit::entry)))
        .service(web::resource("/logs").route(web::get().to(logs::logs)));
    // dash-b's sections: one `configure` per page module.
    cfg.configure(minecraft::configure);
    cfg.configure(account::configure);
    cfg.configure(guilds::configure);
    cfg.configure(minecraft_links::configure);
    cfg.configure(admin::configure);
}

/// Escapes text for HTML content and attribute values (what Sailfish's `<%= %>` does), for the
/// few helpers that build markup in Rust.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
