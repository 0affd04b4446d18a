//! The guild pages: the guilds the user may see (`/guilds`; a guild-scoped moderator sees only
//! theirs) and one guild (`/guilds/{id}`): its settings form, module toggles, moderation cases
//! (search, filter by user and action, detail, reason edit) and the moderation actions behind a
//! confirmation step. Every change calls the same service function as its API route.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web;
use sailfish::TemplateSimple;
use serde::Deserialize;

use super::form::answer;
use super::{Chrome, FieldErrors, Flash, PageForm, PageResult, SignedIn};
use crate::auth::rbac::Permission as P;
use crate::domain::Snowflake;
use crate::domain::moderation::{ACTION_NAMES, Reason};
use crate::domain::settings::{GuildSettings, ModuleName, SettingChange, SettingKey};
use crate::services::guild_config::GuildOverview;
use crate::services::moderation::Request;
use crate::state::AppState;
use crate::store::cases::CaseRow;
use crate::store::guilds::GuildRow;
use crate::web::api::moderation::{ModerationBody, case_filter, parse_action};
use crate::web::error::ApiError;

/// How many cases the guild page lists.
const CASES_SHOWN: i64 = 50;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/guilds").route(web::get().to(list)))
        .service(
            web::resource("/guilds/{guild_id}")
                .route(web::get().to(guild_page))
                .route(web::post().to(save_settings)),
        )
        .service(
            web::resource("/guilds/{guild_id}/modules/{module}")
                .route(web::post().to(toggle_module)),
        )
        .service(web::resource("/guilds/{guild_id}/moderation").route(web::post().to(moderate)))
        .service(web::resource("/guilds/{guild_id}/cases/{number}").route(web::get().to(case)))
        .service(
            web::resource("/guilds/{guild_id}/cases/{number}/reason")
                .route(web::post().to(edit_reason)),
        );
}

fn guild_id(raw: &str) -> Result<Snowflake, ApiError> {
    Snowflake::parse(raw).map_err(|e| ApiError::invalid_field("guild_id", e))
}

// ---- the list --------------------------------------------------------------------------------

#[derive(TemplateSimple)]
#[template(path = "pages/guilds.stpl")]
struct ListPage {
    chrome: Chrome,
    guilds: Vec<GuildRow>,
}

pub async fn list(page: SignedIn, state: web::Data<AppState>) -> PageResult {
    if !page.can_anywhere(P::BotView) {
        return Err(ApiError::Forbidden.into());
    }
    // The same narrowing as `GET /api/v1/guilds`.
    let mut guilds = state.guilds.list().await.map_err(ApiError::from)?;
    if !page.grants.allows_globally(P::BotView) {
        let visible = page.grants.guilds_with(P::BotView);
        guilds.retain(|g| visible.contains(&g.id));
    }
    guilds.retain(GuildRow::is_present);
    page.render(ListPage {
        chrome: page.chrome("Guilds"),
        guilds,
    })
}

// ---- one guild -------------------------------------------------------------------------------

/// The settings form's fields as typed (ids and text), so a refused save shows them again.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    pub version: Option<i64>,
    #[serde(default)]
    pub log_channel: String,
    #[serde(default)]
    pub mod_role: String,
    #[serde(default)]
    pub welcome_channel: String,
    #[serde(default)]
    pub welcome_message: String,
    #[serde(default)]
    pub minecraft_server: String,
    #[serde(default)]
    pub minecraft_role: String,
}

impl SettingsForm {
    fn of(settings: &GuildSettings, version: i64) -> Self {
        let id = |v: Option<Snowflake>| v.map(|s| s.to_string()).unwrap_or_default();
        SettingsForm {
            version: Some(version),
            log_channel: id(settings.log_channel),
            mod_role: id(settings.mod_role),
            welcome_channel: id(settings.welcome_channel),
            welcome_message: settings
                .welcome_message
                .as_ref()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default(),
            minecraft_server: settings
                .minecraft_server
                .as_ref()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default(),
            minecraft_role: id(settings.minecraft_role),
        }
    }

    /// The typed value of the field named `key` (as the template names it).
    pub fn value_of(&self, key: &str) -> &str {
        SettingKey::parse(key).map_or("", |k| self.value(k))
    }

    fn value(&self, key: SettingKey) -> &str {
        match key {
            SettingKey::LogChannel => &self.log_channel,
            SettingKey::ModRole => &self.mod_role,
            SettingKey::WelcomeChannel => &self.welcome_channel,
            SettingKey::WelcomeMessage => &self.welcome_message,
            SettingKey::MinecraftServer => &self.minecraft_server,
            SettingKey::MinecraftRole => &self.minecraft_role,
        }
    }

    /// Every field parsed by the rules `/settings set` uses (an empty field clears the
    /// setting); each problem is kept beside its field.
    fn parse(&self) -> Result<GuildSettings, FieldErrors> {
        let mut settings = GuildSettings::default();
        let mut errors = FieldErrors::new();
        for key in SettingKey::ALL {
            match SettingChange::from_text(key, self.value(key)) {
                Ok(change) => settings.apply(change),
                Err(problem) => errors.add(key.as_str(), problem),
            }
        }
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }
}

/// A field of the settings form: its key, label and hint.
pub struct SettingField {
    pub key: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
}

pub const SETTING_FIELDS: [SettingField; 6] = [
    SettingField {
        key: "log_channel",
        label: "Log channel",
        hint: "Channel id where cases are posted",
    },
    SettingField {
        key: "mod_role",
        label: "Moderator role",
        hint: "Role id that may warn and see cases",
    },
    SettingField {
        key: "welcome_channel",
        label: "Welcome channel",
        hint: "Channel id where newcomers are greeted",
    },
    SettingField {
        key: "welcome_message",
        label: "Welcome message",
        hint: "1 to 1,000 characters; {user} mentions the newcomer",
    },
    SettingField {
        key: "minecraft_server",
        label: "Minecraft server",
        hint: "The server /mc talks to (empty: the default server)",
    },
    SettingField {
        key: "minecraft_role",
        label: "Minecraft role",
        hint: "Role id allowed to run /mc cmd",
    },
];

/// The moderation form's fields as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub duration: String,
    #[serde(default)]
    pub delete_message_days: String,
    /// Present on the second step: the user confirmed.
    #[serde(default)]
    pub confirm: Option<String>,
}

impl ActionForm {
    fn body(&self) -> Result<ModerationBody, ApiError> {
        let delete_message_days = match self.delete_message_days.trim() {
            "" => None,
            raw => Some(raw.parse::<u8>().map_err(|_| {
                ApiError::invalid_field("delete_message_days", "must be a number from 0 to 7")
            })?),
        };
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(ModerationBody {
            user_id: self.user_id.trim().to_owned(),
            reason: text(&self.reason),
            duration: text(&self.duration),
            delete_message_days,
        })
    }
}

#[derive(Default)]
pub struct GuildForms {
    pub settings: Option<SettingsForm>,
    pub settings_errors: FieldErrors,
    pub action: ActionForm,
    pub action_errors: FieldErrors,
}

#[derive(TemplateSimple)]
#[template(path = "pages/guild.stpl")]
struct GuildPage {
    chrome: Chrome,
    overview: GuildOverview,
    version: i64,
    can_read_settings: bool,
    can_write_settings: bool,
    can_modules: bool,
    can_view_cases: bool,
    can_act: bool,
    /// May see the guild's linked Minecraft accounts (their page is linked from here).
    can_view_links: bool,
    cases: Vec<CaseRow>,
    query: HashMap<String, String>,
    forms: GuildForms,
}

/// The settings form's values: what was typed (after a refused save) or what is stored.
fn settings_form(forms: &GuildForms, overview: &GuildOverview, version: i64) -> SettingsForm {
    forms
        .settings
        .clone()
        .unwrap_or_else(|| SettingsForm::of(&overview.settings, version))
}

/// A query parameter of the case filter, as typed.
fn q<'a>(query: &'a HashMap<String, String>, name: &str) -> &'a str {
    query.get(name).map(String::as_str).unwrap_or_default()
}

#[derive(TemplateSimple)]
#[template(path = "pages/guild_confirm.stpl")]
struct ConfirmPage {
    chrome: Chrome,
    guild: GuildRow,
    form: ActionForm,
}

async fn render_guild(
    page: &SignedIn,
    state: &AppState,
    guild: Snowflake,
    query: HashMap<String, String>,
    status: StatusCode,
    forms: GuildForms,
) -> PageResult {
    let g = Some(guild.as_i64());
    let overview = state.guilds.overview(guild).await.map_err(ApiError::from)?;
    let can_read_settings = page.can(P::SettingsRead, g);
    let version = if can_read_settings {
        state
            .guilds
            .settings(guild)
            .await
            .map_err(ApiError::from)?
            .version
    } else {
        0
    };
    let can_view_cases = page.can(P::ModerationView, g);
    let cases = if can_view_cases {
        let filter = case_filter(&query)?;
        state
            .moderation
            .cases(guild, &filter, CASES_SHOWN)
            .await
            .map_err(ApiError::from)?
    } else {
        Vec::new()
    };
    let title = overview.guild.name.clone();
    page.render_status(
        status,
        GuildPage {
            chrome: page.chrome(&title),
            overview,
            version,
            can_read_settings,
            can_write_settings: page.can(P::SettingsWrite, g),
            can_modules: page.can(P::ModulesManage, g),
            can_view_cases,
            can_act: page.can(P::ModerationAct, g),
            can_view_links: page.can(P::MinecraftView, g),
            cases,
            query,
            forms,
        },
    )
}

pub async fn guild_page(
    page: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> PageResult {
    let guild = guild_id(&path)?;
    page.require_in(P::BotView, guild.as_i64())?;
    render_guild(
        &page,
        &state,
        guild,
        query.into_inner(),
        StatusCode::OK,
        GuildForms::default(),
    )
    .await
}

/// Saves the whole settings form with `If-Match` semantics: a change made elsewhere since the
/// form was shown is refused instead of overwritten.
pub async fn save_settings(
    form: PageForm<SettingsForm>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let (page, input) = form.into_parts();
    let guild = guild_id(&path)?;
    page.require_in(P::SettingsWrite, guild.as_i64())?;
    let errors = match input.parse() {
        Ok(settings) => match state
            .guilds
            .replace(
                guild,
                &settings,
                input.version,
                page.actor.clone(),
                page.origin().clone(),
            )
            .await
        {
            Ok(_) => {
                return Ok(page.redirect_with(
                    &format!("/guilds/{guild}#settings"),
                    Flash::ok("Settings saved"),
                ));
            }
            Err(e) => FieldErrors::from_api(ApiError::from(e))?,
        },
        Err(errors) => errors,
    };
    let forms = GuildForms {
        settings: Some(input),
        settings_errors: errors,
        ..GuildForms::default()
    };
    render_guild(
        &page,
        &state,
        guild,
        HashMap::new(),
        StatusCode::UNPROCESSABLE_ENTITY,
        forms,
    )
    .await
}

#[derive(Deserialize)]
pub struct ModuleForm {
    pub enabled: String,
}

pub async fn toggle_module(
    form: PageForm<ModuleForm>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> PageResult {
    let (page, input) = form.into_parts();
    let (raw_guild, raw_module) = path.into_inner();
    let guild = guild_id(&raw_guild)?;
    page.require_in(P::ModulesManage, guild.as_i64())?;
    let module =
        ModuleName::parse(&raw_module).map_err(|p| ApiError::invalid_field("module", p))?;
    let enabled = match input.enabled.as_str() {
        "true" => true,
        "false" => false,
        other => {
            return Err(ApiError::invalid_field(
                "enabled",
                format!("`{other}` is not true or false"),
            )
            .into());
        }
    };
    state
        .guilds
        .set_module(
            guild,
            module,
            enabled,
            page.actor.clone(),
            page.origin().clone(),
        )
        .await
        .map_err(ApiError::from)?;
    Ok(page.redirect_with(
        &format!("/guilds/{guild}#modules"),
        Flash::ok(format!(
            "Module {module} turned {}",
            if enabled { "on" } else { "off" }
        )),
    ))
}

/// A moderation action in two steps: the first post shows what will happen and asks for
/// confirmation; only a post carrying `confirm` acts.
pub async fn moderate(
    form: PageForm<ActionForm>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let (page, input) = form.into_parts();
    let guild = guild_id(&path)?;
    page.require_in(P::ModerationAct, guild.as_i64())?;
    let parsed = input
        .body()
        .and_then(|body| parse_action(input.action.trim(), &body));
    let (target, action, reason) = match parsed {
        Ok(p) => p,
        Err(e) => {
            let forms = GuildForms {
                action_errors: FieldErrors::from_api(e)?,
                action: input,
                ..GuildForms::default()
            };
            return render_guild(
                &page,
                &state,
                guild,
                HashMap::new(),
                StatusCode::UNPROCESSABLE_ENTITY,
                forms,
            )
            .await;
        }
    };
    if input.confirm.is_none() {
        let overview = state.guilds.overview(guild).await.map_err(ApiError::from)?;
        return page.render(ConfirmPage {
            chrome: page.chrome("Confirm moderation action"),
            guild: overview.guild,
            form: input,
        });
    }
    let done = state
        .moderation
        .moderate(Request {
            guild_id: guild,
            target,
            action,
            reason,
            actor: page.actor.clone(),
            invoker: None,
            bot_permissions: None,
            origin: page.origin().clone(),
        })
        .await;
    answer(
        done,
        |done| {
            let to = format!("/guilds/{guild}/cases/{}", done.case.case_number);
            page.redirect_with(&to, Flash::ok(done.summary))
        },
        |action_errors| {
            let forms = GuildForms {
                action_errors,
                // Shown again to be confirmed again, not acted on.
                action: ActionForm {
                    confirm: None,
                    ..input
                },
                ..GuildForms::default()
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_guild(&page, &state, guild, HashMap::new(), status, forms)
        },
    )
    .await
}

// ---- one case --------------------------------------------------------------------------------

#[derive(TemplateSimple)]
#[template(path = "pages/guild_case.stpl")]
struct CasePage {
    chrome: Chrome,
    guild: Snowflake,
    case: CaseRow,
    can_act: bool,
    reason: String,
    errors: FieldErrors,
}

fn case_number(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError::invalid_field("number", "is not a case number"))
}

pub async fn case(
    page: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> PageResult {
    let (raw_guild, raw_number) = path.into_inner();
    let guild = guild_id(&raw_guild)?;
    page.require_in(P::ModerationView, guild.as_i64())?;
    let number = case_number(&raw_number)?;
    let case = state
        .moderation
        .case(guild, number)
        .await
        .map_err(ApiError::from)?;
    page.render(CasePage {
        chrome: page.chrome(&format!("Case #{number}")),
        guild,
        reason: case.reason.clone().unwrap_or_default(),
        can_act: page.can(P::ModerationAct, Some(guild.as_i64())),
        case,
        errors: FieldErrors::new(),
    })
}

#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    pub reason: String,
}

pub async fn edit_reason(
    form: PageForm<ReasonForm>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> PageResult {
    let (page, input) = form.into_parts();
    let (raw_guild, raw_number) = path.into_inner();
    let guild = guild_id(&raw_guild)?;
    page.require_in(P::ModerationAct, guild.as_i64())?;
    let number = case_number(&raw_number)?;
    let result = match Reason::parse(&input.reason) {
        Ok(Some(reason)) => state
            .moderation
            .set_case_reason(
                guild,
                number,
                &reason,
                page.actor.clone(),
                page.origin().clone(),
            )
            .await
            .map_err(ApiError::from),
        Ok(None) => Err(ApiError::invalid_field("reason", "is empty")),
        Err(problem) => Err(ApiError::invalid_field("reason", problem)),
    };
    let to = format!("/guilds/{guild}/cases/{number}");
    // References, so that the form's future can own them beside `errors`.
    let (page, state) = (&page, &state);
    answer(
        result,
        |_| page.redirect_with(&to, Flash::ok("Reason saved")),
        |errors| async move {
            let case = state
                .moderation
                .case(guild, number)
                .await
                .map_err(ApiError::from)?;
            page.render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                CasePage {
                    chrome: page.chrome(&format!("Case #{number}")),
                    guild,
                    can_act: true,
                    case,
                    reason: input.reason,
                    errors,
                },
            )
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_settings_field_clears_the_setting_and_a_bad_one_is_named() {
        let form = SettingsForm {
            log_channel: "123456789012345678".into(),
            welcome_message: "Hello {user}".into(),
            ..SettingsForm::default()
        };
        let settings = form.parse().unwrap();
        assert_eq!(
            settings.log_channel.map(|s| s.as_i64()),
            Some(123_456_789_012_345_678)
        );
        assert!(settings.mod_role.is_none());
        let bad = SettingsForm {
            mod_role: "moderators".into(),
            ..SettingsForm::default()
        };
        let errors = bad.parse().unwrap_err();
        assert!(errors.get("mod_role").is_some());
        assert!(errors.get("log_channel").is_none());
    }
}
