//! The live log viewer (`/logs`): the page is the frame; `static/js/guildhall.js`
//! (`logViewer`, an Alpine.js component) opens `/ws/logs`, shows the backlog the stream
//! replays on connect and then live lines, and sends the level filter and search to the stream
//! (which filters there, so a quiet view costs no traffic). Pause keeps what arrives for later;
//! auto-scroll stops while the reader has scrolled up; drops, reconnects and missed lines are
//! announced in the list and in a live region.

use actix_web::web;
use sailfish::TemplateSimple;

use super::page::{Chrome, PageResult, SignedIn};
use crate::auth::rbac::Permission;

#[derive(TemplateSimple)]
#[template(path = "pages/logs.stpl")]
struct LogsPage {
    chrome: Chrome,
}

/// `GET /logs`: needs `logs.view` globally, like the stream itself.
pub async fn logs(page: SignedIn, _state: web::Data<crate::state::AppState>) -> PageResult {
    page.require(Permission::LogsView)?;
    page.render(LogsPage {
        chrome: page.chrome("Live logs"),
    })
}
