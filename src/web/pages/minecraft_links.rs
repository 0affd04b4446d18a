//! A guild's linked Minecraft accounts (`/guilds/{id}/minecraft/links`): each link (member,
//! Minecraft name, linked at, whitelisted or not), the last reconciliation of the guild's
//! server and its result; an admin links a member (a form) and unlinks one (a confirmation
//! page, then a post). Every change calls the same `LinkService` functions as
//! `/api/v1/guilds/{id}/minecraft/links`. Forms are plain posts; htmx (`hx-boost`) only spares
//! the reload.

use actix_web::http::StatusCode;
use actix_web::web;
use sailfish::TemplateSimple;
use serde::Deserialize;

use super::{Chrome, FieldErrors, Flash, PageError, PageForm, PageResult, SignedIn, form};
use crate::auth::rbac::Permission as P;
use crate::domain::Snowflake;
use crate::minecraft::links::{GuildLinks, LinkActor, LinkError};
use crate::state::AppState;
use crate::store::guilds::GuildRow;
use crate::store::minecraft_links::StoredLink;
use crate::web::error::ApiError;
use crate::web::extract::parse_snowflake;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/guilds/{guild_id}/minecraft/links")
            .route(web::get().to(links_page))
            .route(web::post().to(link)),
    )
    .service(
        web::resource("/guilds/{guild_id}/minecraft/links/{user_id}/unlink")
            .route(web::get().to(confirm_unlink))
            .route(web::post().to(unlink)),
    );
}

fn guild_id(raw: &str) -> Result<Snowflake, ApiError> {
    Snowflake::parse(raw).map_err(|e| ApiError::invalid_field("guild_id", e))
}

fn by(page: &SignedIn) -> LinkActor {
    LinkActor {
        actor: page.actor.clone(),
        origin: page.origin().clone(),
    }
}

/// The link form's fields as typed, so a refused link shows them again.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub minecraft_name: String,
}

/// The last reconciliation as the page shows it.
pub struct Reconciliation {
    pub at: i64,
    pub outcome: String,
    /// "1 added, 2 removed, 0 failed" (or the error of a failed run).
    pub summary: String,
}

impl Reconciliation {
    fn of(links: &GuildLinks) -> Option<Self> {
        let last = links.last_reconciliation.as_ref()?;
        let result = &last["result"];
        let count = |key: &str| result[key].as_u64().unwrap_or(0);
        let summary = match result["error"].as_str() {
            Some(error) => error.to_owned(),
            None => format!(
                "{} added, {} removed, {} failed, {} left alone (not managed)",
                count("added"),
                count("removed"),
                count("failed"),
                count("unmanaged")
            ),
        };
        Some(Reconciliation {
            at: last["at"].as_i64()?,
            outcome: last["outcome"].as_str().unwrap_or("unknown").to_owned(),
            summary,
        })
    }
}

#[derive(TemplateSimple)]
#[template(path = "pages/guild_links.stpl")]
struct LinksPage {
    chrome: Chrome,
    guild: GuildRow,
    links: GuildLinks,
    reconciliation: Option<Reconciliation>,
    can_manage: bool,
    form: LinkForm,
    errors: FieldErrors,
}

async fn render_links(
    page: &SignedIn,
    state: &AppState,
    guild: Snowflake,
    status: StatusCode,
    form: LinkForm,
    errors: FieldErrors,
) -> PageResult {
    let overview = state.guilds.overview(guild).await.map_err(ApiError::from)?;
    let links = state
        .links
        .guild_links(guild.as_i64())
        .await
        .map_err(ApiError::from)?;
    page.render_status(
        status,
        LinksPage {
            chrome: page.chrome(&format!("Minecraft accounts · {}", overview.guild.name)),
            guild: overview.guild,
            reconciliation: Reconciliation::of(&links),
            links,
            can_manage: page.can(P::MinecraftManage, Some(guild.as_i64())),
            form,
            errors,
        },
    )
}

pub async fn links_page(
    page: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let guild = guild_id(&path)?;
    page.require_in(P::MinecraftView, guild.as_i64())?;
    render_links(
        &page,
        &state,
        guild,
        StatusCode::OK,
        LinkForm::default(),
        FieldErrors::new(),
    )
    .await
}

/// The refusals that belong beside a field of the link form; anything else goes through
/// [`FieldErrors::from_api`] (above the form, or an error page for an outage).
fn link_errors(e: LinkError) -> Result<FieldErrors, PageError> {
    let mut errors = FieldErrors::new();
    match e {
        LinkError::InvalidName(_) | LinkError::NameTaken(_) => {
            errors.add("minecraft_name", e.to_string());
        }
        LinkError::AlreadyLinked(_) => {
            errors.add(
                "user_id",
                format!("this member is {e}"), // "already linked to the Minecraft name …"
            );
        }
        LinkError::NotAMember => errors.add("user_id", e.to_string()),
        other => return FieldErrors::from_api(ApiError::from(other)),
    }
    Ok(errors)
}

pub async fn link(
    form: PageForm<LinkForm>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let (page, input) = form.into_parts();
    let guild = guild_id(&path)?;
    page.require_in(P::MinecraftManage, guild.as_i64())?;
    let result = match parse_snowflake("user_id", input.user_id.trim()) {
        Ok(user) => state
            .links
            .admin_link(guild.as_i64(), user, &input.minecraft_name, &by(&page))
            .await
            .map_err(link_errors),
        Err(e) => Err(FieldErrors::from_api(e)),
    };
    let done = |link: StoredLink| {
        let whitelisted = if link.whitelisted {
            " and added to the whitelist"
        } else {
            ""
        };
        page.redirect_with(
            &format!("/guilds/{guild}/minecraft/links"),
            Flash::ok(format!(
                "Linked {} to member {}{whitelisted}",
                link.minecraft_name, link.discord_user_id
            )),
        )
    };
    let again = |errors| {
        render_links(
            &page,
            &state,
            guild,
            StatusCode::UNPROCESSABLE_ENTITY,
            input.clone(),
            errors,
        )
    };
    form::answer_with(result, |refusal| refusal, done, again).await
}

#[derive(TemplateSimple)]
#[template(path = "pages/guild_link_confirm.stpl")]
struct ConfirmPage {
    chrome: Chrome,
    guild: GuildRow,
    link: StoredLink,
}

/// The member's link, or `not_linked` (404).
async fn link_of(state: &AppState, guild: Snowflake, user: i64) -> Result<StoredLink, ApiError> {
    let links = state
        .links
        .guild_links(guild.as_i64())
        .await
        .map_err(ApiError::from)?;
    links
        .links
        .into_iter()
        .find(|l| l.discord_user_id == user)
        .ok_or_else(|| ApiError::from(LinkError::NotLinked))
}

async fn render_confirm(
    page: &SignedIn,
    state: &AppState,
    guild: Snowflake,
    user: i64,
) -> PageResult {
    let link = link_of(state, guild, user).await?;
    let overview = state.guilds.overview(guild).await.map_err(ApiError::from)?;
    page.render(ConfirmPage {
        chrome: page.chrome(&format!("Unlink {}?", link.minecraft_name)),
        guild: overview.guild,
        link,
    })
}

/// The confirmation step (a page of its own, so it works without script).
pub async fn confirm_unlink(
    page: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> PageResult {
    let (raw_guild, raw_user) = path.into_inner();
    let guild = guild_id(&raw_guild)?;
    page.require_in(P::MinecraftManage, guild.as_i64())?;
    let user = parse_snowflake("user_id", &raw_user)?;
    render_confirm(&page, &state, guild, user).await
}

#[derive(Deserialize)]
pub struct UnlinkForm {
    /// Present on the confirmation page's button: without it nothing is unlinked.
    #[serde(default)]
    pub confirm: Option<String>,
}

pub async fn unlink(
    form: PageForm<UnlinkForm>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> PageResult {
    let (page, input) = form.into_parts();
    let (raw_guild, raw_user) = path.into_inner();
    let guild = guild_id(&raw_guild)?;
    page.require_in(P::MinecraftManage, guild.as_i64())?;
    let user = parse_snowflake("user_id", &raw_user)?;
    if input.confirm.as_deref() != Some("yes") {
        return render_confirm(&page, &state, guild, user).await;
    }
    let link = state
        .links
        .unlink(guild.as_i64(), user, &by(&page))
        .await
        .map_err(ApiError::from)?;
    let removed = if link.whitelisted {
        " and removed from the whitelist"
    } else {
        ""
    };
    Ok(page.redirect_with(
        &format!("/guilds/{guild}/minecraft/links"),
        Flash::ok(format!(
            "Unlinked {} from member {}{removed}",
            link.minecraft_name, link.discord_user_id
        )),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(last: Option<serde_json::Value>) -> GuildLinks {
        GuildLinks {
            server: Some("default".into()),
            minecraft_role: None,
            links: Vec::new(),
            last_reconciliation: last,
            next_reconciliation_at: None,
            kick_on_remove: false,
        }
    }

    #[test]
    fn a_reconciliation_is_summarised_by_its_counts_or_its_error() {
        assert!(Reconciliation::of(&links(None)).is_none());
        let ok = Reconciliation::of(&links(Some(serde_json::json!({
            "at": 5, "outcome": "ok", "result": {"added": 1, "removed": 2, "failed": 0, "unmanaged": 3}
        }))))
        .unwrap();
        assert_eq!((ok.at, ok.outcome.as_str()), (5, "ok"));
        assert_eq!(
            ok.summary,
            "1 added, 2 removed, 0 failed, 3 left alone (not managed)"
        );
        let failed = Reconciliation::of(&links(Some(serde_json::json!({
            "at": 6, "outcome": "failed", "result": {"error": "Minecraft server: unreachable"}
        }))))
        .unwrap();
        assert_eq!(failed.summary, "Minecraft server: unreachable");
    }

    #[test]
    fn link_refusals_go_beside_the_field_they_concern() {
        let errors = link_errors(LinkError::InvalidName("x y".into())).unwrap();
        assert!(errors.get("minecraft_name").is_some());
        let errors = link_errors(LinkError::NameTaken("Alex".into())).unwrap();
        assert!(
            errors
                .get("minecraft_name")
                .unwrap()
                .contains("already linked")
        );
        let errors = link_errors(LinkError::NotAMember).unwrap();
        assert!(errors.get("user_id").is_some());
        let errors = link_errors(LinkError::AlreadyLinked("Steve".into())).unwrap();
        assert!(errors.get("user_id").unwrap().contains("Steve"));
        // An outage is not a form error: it is answered as an error page.
        assert!(link_errors(LinkError::Discord("down".into())).is_err());
    }
}
