//! The audit log pages: filters (actor, action, guild, time range), older entries loaded as the
//! reader scrolls (htmx `revealed`; a plain "Older entries" link without script), an entry's
//! detail, and the filtered view exported as CSV or JSON. Every read goes through
//! `web::api::audit::entries`, the API's own query with its narrowing to the reader's guilds.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::NaiveDateTime;
use sailfish::TemplateSimple;
use serde::{Deserialize, Serialize};

use super::form::FieldErrors;
use super::page::{Chrome, PageError, PageResult, SignedIn, html};
use crate::auth::rbac::Permission;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::audit::{AuditEntry, AuditFilter};
use crate::web::api::audit::{EntryView, entries};
use crate::web::error::ApiError;

/// Entries per page (and per scroll step).
const PAGE: u32 = 50;
/// Entries fetched per query while exporting, and the most an export holds.
const EXPORT_CHUNK: u32 = 200;
const MAX_EXPORT: usize = 10_000;

/// The filter form as the browser sends it: every field text, empty meaning "any".
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuditQuery {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub actor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub guild: String,
    /// `YYYY-MM-DDTHH:MM` (a `datetime-local` input), UTC.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to: String,
    /// Cursor: entries older than this id.
    #[serde(default, skip_serializing)]
    pub before: String,
    /// Export format: `csv` or `json`.
    #[serde(default, skip_serializing)]
    pub format: String,
}

impl AuditQuery {
    /// The filters as a query string (without the cursor), for links that keep them.
    pub fn query_string(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }

    /// A link to `path` with the filters and `extra` (`before=…`, `format=…`).
    pub fn link(&self, path: &str, extra: &str) -> String {
        let q = self.query_string();
        match (q.is_empty(), extra.is_empty()) {
            (true, true) => path.to_owned(),
            (true, false) => format!("{path}?{extra}"),
            (false, true) => format!("{path}?{q}"),
            (false, false) => format!("{path}?{q}&{extra}"),
        }
    }
}

fn parse_time(field: &str, raw: &str, errors: &mut FieldErrors) -> Option<i64> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let parsed = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"));
    match parsed {
        Ok(t) => Some(t.and_utc().timestamp_millis()),
        Err(_) => {
            errors.add(field, "Use the form 2026-11-30T14:05 (UTC).");
            None
        }
    }
}

fn parse_id(field: &str, raw: &str, errors: &mut FieldErrors) -> Option<i64> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    match crate::web::extract::parse_snowflake(field, raw) {
        Ok(id) => Some(id),
        Err(_) => {
            errors.add(field, "Enter a numeric id.");
            None
        }
    }
}

/// The store filter for `query`, or the errors to show beside the filter fields. A reader with
/// only guild grants sees their first guild unless they chose another of theirs.
async fn filter_of(
    state: &AppState,
    page: &SignedIn,
    query: &mut AuditQuery,
    limit: u32,
) -> Result<(AuditFilter, FieldErrors), PageError> {
    let mut errors = FieldErrors::new();
    let mut filter = AuditFilter {
        limit,
        ..AuditFilter::default()
    };
    let actor = query.actor.trim();
    if !actor.is_empty() {
        if actor.bytes().all(|b| b.is_ascii_digit()) {
            filter.actor_user_id = parse_id("actor", actor, &mut errors);
        } else {
            match crate::store::users::find_by_username(&state.store, actor).await {
                Ok(user) => filter.actor_user_id = Some(user.id),
                Err(StoreError::NotFound) => errors.add("actor", "No user has this name."),
                Err(e) => return Err(ApiError::from(e).into()),
            }
        }
    }
    let action = query.action.trim();
    if !action.is_empty() {
        match crate::web::validate::text("action", action, 1, 64) {
            Ok(a) => filter.action = Some(a.to_owned()),
            Err(_) => errors.add("action", "At most 64 characters, no control characters."),
        }
    }
    if query.guild.trim().is_empty()
        && !page.grants.allows_globally(Permission::AuditRead)
        && let Some(first) = page.grants.guilds_with(Permission::AuditRead).first()
    {
        query.guild = first.to_string();
    }
    filter.guild_id = parse_id("guild", &query.guild, &mut errors);
    filter.from_ms = parse_time("from", &query.from, &mut errors);
    filter.to_ms = parse_time("to", &query.to, &mut errors);
    filter.before_id = parse_id("before", &query.before, &mut errors);
    Ok((filter, errors))
}

#[derive(TemplateSimple)]
#[template(path = "pages/audit.stpl")]
struct AuditPage {
    chrome: Chrome,
    query: AuditQuery,
    errors: FieldErrors,
    rows: Rows,
    /// Guilds a guild-scoped reader may choose from (empty for global readers).
    guilds: Vec<i64>,
}

#[derive(TemplateSimple)]
#[template(path = "pages/audit_rows.stpl")]
struct RowsFragment {
    rows: Rows,
}

/// A page of entries and the link to the next (older) one.
pub struct Rows {
    entries: Vec<AuditEntry>,
    /// `/audit/rows?…&before=…` when there may be older entries.
    more: Option<String>,
    /// The same for readers without script: a full page.
    more_page: Option<String>,
    /// The id of the entry this page continues after (`before=…`), if any: the first row's link
    /// takes the id the "Older entries" link had (`older-<id>`), so that htmx, swapping the
    /// focused link for these rows, moves focus to the first of them (keyboard users keep
    /// their place).
    continues_after: Option<i64>,
    guild_param: String,
}

async fn rows(
    state: &AppState,
    page: &SignedIn,
    query: &AuditQuery,
    filter: AuditFilter,
) -> Result<Rows, PageError> {
    let continues_after = filter.before_id;
    let list = entries(state, &page.grants, filter).await?;
    let (more, more_page) = match list.last() {
        Some(last) if list.len() == PAGE as usize => {
            let extra = format!("before={}", last.id);
            (
                Some(query.link("/audit/rows", &extra)),
                Some(query.link("/audit", &extra)),
            )
        }
        _ => (None, None),
    };
    let guild_param = if query.guild.is_empty() {
        String::new()
    } else {
        format!("?guild={}", query.guild.trim())
    };
    Ok(Rows {
        entries: list,
        more,
        more_page,
        continues_after,
        guild_param,
    })
}

fn empty_rows() -> Rows {
    Rows {
        entries: Vec::new(),
        more: None,
        more_page: None,
        continues_after: None,
        guild_param: String::new(),
    }
}

fn require_reader(page: &SignedIn) -> Result<(), PageError> {
    if page.can_anywhere(Permission::AuditRead) {
        Ok(())
    } else {
        Err(ApiError::Forbidden.into())
    }
}

/// `GET /audit`: the filter form and the newest entries it selects.
pub async fn list(
    page: SignedIn,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> PageResult {
    require_reader(&page)?;
    let mut query = query.into_inner();
    let (filter, errors) = filter_of(&state, &page, &mut query, PAGE).await?;
    let (rows, status) = if errors.is_empty() {
        (rows(&state, &page, &query, filter).await?, StatusCode::OK)
    } else {
        (empty_rows(), StatusCode::UNPROCESSABLE_ENTITY)
    };
    let guilds = if page.grants.allows_globally(Permission::AuditRead) {
        Vec::new()
    } else {
        page.grants.guilds_with(Permission::AuditRead)
    };
    page.render_status(
        status,
        AuditPage {
            chrome: page.chrome("Audit log"),
            query,
            errors,
            rows,
            guilds,
        },
    )
}

/// `GET /audit/rows`: the next page of rows, for infinite scroll.
pub async fn more(
    page: SignedIn,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> PageResult {
    require_reader(&page)?;
    let mut query = query.into_inner();
    let (filter, errors) = filter_of(&state, &page, &mut query, PAGE).await?;
    if !errors.is_empty() {
        return Err(ApiError::bad_request("invalid filter").into());
    }
    let rows = rows(&state, &page, &query, filter).await?;
    html(StatusCode::OK, RowsFragment { rows })
}

#[derive(TemplateSimple)]
#[template(path = "pages/audit_entry.stpl")]
struct EntryPage {
    chrome: Chrome,
    entry: AuditEntry,
    details: String,
}

#[derive(Deserialize)]
pub struct GuildParam {
    guild: Option<String>,
}

/// `GET /audit/{id}`: one entry in full.
pub async fn entry(
    page: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<GuildParam>,
) -> PageResult {
    require_reader(&page)?;
    let id = crate::web::extract::parse_snowflake("id", &id)?;
    let mut filter = AuditFilter {
        before_id: Some(id.saturating_add(1)),
        limit: 1,
        ..AuditFilter::default()
    };
    if let Some(g) = query.guild.as_deref().filter(|g| !g.is_empty()) {
        filter.guild_id = Some(crate::web::extract::parse_snowflake("guild", g)?);
    }
    let entry = entries(&state, &page.grants, filter)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no audit entry {id} you may read")))?;
    let details = serde_json::to_string_pretty(&entry.details).unwrap_or_default();
    page.render(EntryPage {
        chrome: page.chrome("Audit entry"),
        entry,
        details,
    })
}

/// `GET /audit/export?format=csv|json&…filters`: the filtered view, newest first, as a file.
pub async fn export(
    page: SignedIn,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> PageResult {
    require_reader(&page)?;
    let mut query = query.into_inner();
    let format = query.format.clone();
    if format != "csv" && format != "json" {
        return Err(ApiError::invalid_field("format", "must be csv or json").into());
    }
    let (mut filter, errors) = filter_of(&state, &page, &mut query, EXPORT_CHUNK).await?;
    if !errors.is_empty() {
        return Err(ApiError::bad_request("invalid filter: correct it on the audit page").into());
    }
    let mut all: Vec<AuditEntry> = Vec::new();
    loop {
        let chunk = entries(&state, &page.grants, filter.clone()).await?;
        let full = chunk.len() == EXPORT_CHUNK as usize;
        filter.before_id = chunk.last().map(|e| e.id);
        all.extend(chunk);
        if !full || all.len() >= MAX_EXPORT {
            break;
        }
    }
    all.truncate(MAX_EXPORT);
    let (body, content_type) = if format == "csv" {
        (to_csv(&all), "text/csv; charset=utf-8")
    } else {
        let views: Vec<EntryView> = all.into_iter().map(EntryView::from).collect();
        let body = serde_json::to_string(&serde_json::json!({ "entries": views }))
            .map_err(|e| ApiError::Internal(e.into()))?;
        (body, "application/json")
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"guildhall-audit.{format}\""),
        ))
        .body(body))
}

/// One CSV cell: quoted when needed, and a leading `= + - @` defused so that a spreadsheet
/// does not run it as a formula (an actor name or target is user-chosen text).
fn cell(text: &str) -> String {
    let defused = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

fn to_csv(entries: &[AuditEntry]) -> String {
    let mut out = String::from(
        "id,created_at,time_utc,actor,actor_user_id,actor_api_key_id,action,target,guild_id,ip,user_agent,request_id,details\r\n",
    );
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    for e in entries {
        let fields = [
            e.id.to_string(),
            e.created_at.to_string(),
            super::time::iso(e.created_at),
            e.actor_label.clone(),
            opt(e.actor_user_id),
            opt(e.actor_api_key_id),
            e.action.clone(),
            e.target.clone().unwrap_or_default(),
            opt(e.guild_id),
            e.ip.clone().unwrap_or_default(),
            e.user_agent.clone().unwrap_or_default(),
            e.request_id.clone().unwrap_or_default(),
            e.details.to_string(),
        ];
        let line: Vec<String> = fields.iter().map(|f| cell(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_when_needed_and_formulas_are_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(cell("-1,2"), "\"'-1,2\"");
    }

    #[test]
    fn filter_links_keep_the_filters_and_add_the_cursor() {
        let q = AuditQuery {
            action: "auth.login".into(),
            before: "99".into(),
            ..AuditQuery::default()
        };
        assert_eq!(
            q.link("/audit/rows", "before=5"),
            "/audit/rows?action=auth.login&before=5"
        );
        assert_eq!(AuditQuery::default().link("/audit", ""), "/audit");
    }
}
