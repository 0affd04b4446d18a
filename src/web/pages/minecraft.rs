//! The Minecraft pages: the servers with their state and the command policy per role
//! (`/minecraft`), and one server (`/minecraft/servers/{name}`): players online, a console, its
//! schedules and its connection settings. Every action calls the same `MinecraftService`
//! function as its API route; a control the user may not use is not shown (and refused).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use sailfish::TemplateSimple;
use secrecy::SecretString;
use serde::Deserialize;

use super::form::answer;
use super::page::is_htmx;
use super::{Chrome, FieldErrors, Flash, PageForm, PageResult, SignedIn};
use crate::auth::rbac::Permission as P;
use crate::minecraft::command::strip_formatting;
use crate::minecraft::policy::RolePolicy;
use crate::minecraft::schedule::ScheduleSpec;
use crate::minecraft::service::{
    AuditStatus, ServerInfo, ServerPatch, ServerSpec, ServerStatusView,
};
use crate::minecraft::{RconCommand, ServerName};
use crate::state::AppState;
use crate::store::audit::{self, AuditFilter};
use crate::store::schedules::StoredSchedule;
use crate::web::api::minecraft::caller_of;
use crate::web::error::ApiError;
use crate::web::extract::parse_snowflake;

/// How many of the user's own recent commands the console shows (and offers as history).
const CONSOLE_HISTORY: usize = 15;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/minecraft")
            .route(web::get().to(overview))
            .route(web::post().to(add_server)),
    )
    .service(web::resource("/minecraft/policy/{role}").route(web::post().to(save_policy)))
    .service(
        web::resource("/minecraft/servers/{name}")
            .route(web::get().to(server_page))
            .route(web::post().to(edit_server)),
    )
    .service(web::resource("/minecraft/servers/{name}/console").route(web::post().to(console)))
    .service(
        web::resource("/minecraft/servers/{name}/schedules").route(web::post().to(add_schedule)),
    )
    .service(
        web::resource("/minecraft/servers/{name}/schedules/{id}")
            .route(web::post().to(change_schedule)),
    );
}

/// One server as the list shows it.
pub struct ServerRow {
    pub info: ServerInfo,
    pub status: Option<ServerStatusView>,
}

impl ServerRow {
    pub fn state(&self) -> String {
        match &self.status {
            Some(ServerStatusView {
                status: Some(s), ..
            }) => serde_json::to_value(s.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown".into()),
            Some(_) | None => "disabled".into(),
        }
    }

    pub fn players(&self) -> String {
        match self
            .status
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.players.as_ref())
        {
            Some(p) => format!("{} / {}", p.online, p.max),
            None => "—".into(),
        }
    }
}

#[derive(Default, Deserialize)]
pub struct NewServerForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub guilds: String,
    #[serde(default)]
    pub enabled: Option<String>,
}

#[derive(TemplateSimple)]
#[template(path = "pages/minecraft.stpl")]
struct OverviewPage {
    chrome: Chrome,
    servers: Vec<ServerRow>,
    policies: Vec<RolePolicy>,
    can_manage: bool,
    form: NewServerForm,
    errors: FieldErrors,
    /// The role whose policy form is shown with an error, with what was typed.
    policy_error: Option<(String, String, FieldErrors)>,
}

fn port_of(raw: &str) -> Result<i64, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(i64::from(crate::config::DEFAULT_RCON_PORT));
    }
    raw.parse()
        .map_err(|_| ApiError::invalid_field("port", "must be a number from 1 to 65535"))
}

/// Guild ids typed as a list separated by commas, spaces or new lines.
fn guild_list(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn rows(state: &AppState) -> Result<Vec<ServerRow>, ApiError> {
    let mut out = Vec::new();
    for info in state.minecraft.servers().await? {
        let status = state.minecraft.status(&info.name).await.ok();
        out.push(ServerRow { info, status });
    }
    Ok(out)
}

async fn render_overview(
    page: &SignedIn,
    state: &AppState,
    status: StatusCode,
    form: NewServerForm,
    errors: FieldErrors,
    policy_error: Option<(String, String, FieldErrors)>,
) -> PageResult {
    page.render_status(
        status,
        OverviewPage {
            chrome: page.chrome("Minecraft"),
            servers: rows(state).await?,
            policies: state.minecraft.policies().await.map_err(ApiError::from)?,
            can_manage: page.can(P::MinecraftManage, None),
            form,
            errors,
            policy_error,
        },
    )
}

pub async fn overview(page: SignedIn, state: web::Data<AppState>) -> PageResult {
    page.require(P::MinecraftView)?;
    render_overview(
        &page,
        &state,
        StatusCode::OK,
        NewServerForm::default(),
        FieldErrors::new(),
        None,
    )
    .await
}

pub async fn add_server(form: PageForm<NewServerForm>, state: web::Data<AppState>) -> PageResult {
    let (page, input) = form.into_parts();
    page.require(P::MinecraftManage)?;
    let result = async {
        let caller = caller_of(&state, &page, page.origin()).await?;
        let spec = ServerSpec {
            name: input.name.trim().to_owned(),
            host: input.host.trim().to_owned(),
            port: port_of(&input.port)?,
            password: SecretString::from(input.password.clone()),
            enabled: input.enabled.is_some(),
            guilds: guild_list(&input.guilds),
        };
        Ok::<_, ApiError>(state.minecraft.add_server(&caller, spec).await?)
    }
    .await;
    answer(
        result,
        |info| {
            page.redirect_with(
                &format!("/minecraft/servers/{}", info.name),
                Flash::ok(format!("Server {} added", info.name)),
            )
        },
        |errors| {
            // The password is never sent back, not even the one just typed.
            let form = NewServerForm {
                password: String::new(),
                ..input
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_overview(&page, &state, status, form, errors, None)
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    pub allowed: String,
}

pub async fn save_policy(
    form: PageForm<PolicyForm>,
    state: web::Data<AppState>,
    role: web::Path<String>,
) -> PageResult {
    let (page, input) = form.into_parts();
    page.require(P::MinecraftManage)?;
    let roots: Vec<String> = input
        .allowed
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let result = async {
        let caller = caller_of(&state, &page, page.origin()).await?;
        Ok::<_, ApiError>(state.minecraft.set_policy(&caller, &role, &roots).await?)
    }
    .await;
    answer(
        result,
        |saved| {
            let note = format!("Command policy of {} saved", saved.role);
            page.redirect_with("/minecraft", Flash::ok(note))
        },
        |errors| {
            let policy = Some((role.into_inner(), input.allowed, errors));
            let (status, none) = (StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::new());
            render_overview(
                &page,
                &state,
                status,
                NewServerForm::default(),
                none,
                policy,
            )
        },
    )
    .await
}

// ---- one server ------------------------------------------------------------------------------

/// One command of the console's transcript.
pub struct ConsoleLine {
    pub at: i64,
    pub command: String,
    pub output: String,
    pub ok: bool,
}

#[derive(Default, Deserialize)]
pub struct ScheduleForm {
    #[serde(default)]
    pub cron: String,
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub only_when_empty: Option<String>,
    #[serde(default)]
    pub countdown_seconds: String,
    #[serde(default)]
    pub countdown_message: String,
}

#[derive(Default, Deserialize)]
pub struct EditServerForm {
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: String,
    /// Blank keeps the stored password (which is never shown).
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub guilds: String,
    #[serde(default)]
    pub enabled: Option<String>,
}

/// Which form on the server page is shown again with its errors.
#[derive(Default)]
pub struct Forms {
    pub schedule: ScheduleForm,
    pub schedule_errors: FieldErrors,
    pub server: Option<EditServerForm>,
    pub server_errors: FieldErrors,
    pub console_command: String,
    pub console_errors: FieldErrors,
}

#[derive(TemplateSimple)]
#[template(path = "pages/minecraft_server.stpl")]
struct ServerPage {
    chrome: Chrome,
    row: ServerRow,
    schedules: Vec<StoredSchedule>,
    history: Vec<ConsoleLine>,
    can_command: bool,
    can_manage: bool,
    forms: Forms,
}

#[derive(TemplateSimple)]
#[template(path = "pages/minecraft_console_line.stpl")]
struct ConsoleFragment {
    line: ConsoleLine,
}

/// The user's own recent commands on this server, newest last, from the audit log (so the
/// transcript survives a reload and works without JavaScript).
async fn history(
    state: &AppState,
    user_id: i64,
    server: &ServerName,
) -> Result<Vec<ConsoleLine>, ApiError> {
    let entries = audit::list(
        &state.store,
        &AuditFilter {
            actor_user_id: Some(user_id),
            action: Some("minecraft.command".into()),
            limit: 100,
            ..AuditFilter::default()
        },
    )
    .await?;
    let mut lines: Vec<ConsoleLine> = entries
        .into_iter()
        .filter(|e| e.details["server"].as_str() == Some(server.as_str()))
        .take(CONSOLE_HISTORY)
        .map(|e| {
            let ok = e.details["ok"].as_bool().unwrap_or(false);
            ConsoleLine {
                at: e.created_at,
                command: e.details["command"].as_str().unwrap_or_default().to_owned(),
                output: if ok {
                    strip_formatting(e.details["response"].as_str().unwrap_or_default())
                } else {
                    e.details["error"].as_str().unwrap_or_default().to_owned()
                },
                ok,
            }
        })
        .collect();
    lines.reverse();
    Ok(lines)
}

async fn render_server(
    page: &SignedIn,
    state: &AppState,
    name: &ServerName,
    status: StatusCode,
    forms: Forms,
) -> PageResult {
    let info = state
        .minecraft
        .server_info(name)
        .await
        .map_err(ApiError::from)?;
    let server_status = state.minecraft.status(name).await.ok();
    page.render_status(
        status,
        ServerPage {
            chrome: page.chrome(&format!("Minecraft: {name}")),
            row: ServerRow {
                info,
                status: server_status,
            },
            schedules: state
                .minecraft
                .schedules(name)
                .await
                .map_err(ApiError::from)?,
            history: history(state, page.user_id, name).await?,
            can_command: page.can(P::MinecraftCommand, None),
            can_manage: page.can(P::MinecraftManage, None),
            forms,
        },
    )
}

/// The answer to a form on a server's page: a redirect to `to` (a part of that page) with
/// `note`, or the page again with the form's errors placed by `forms`.
async fn answer_on_server<T, E: Into<ApiError>>(
    page: &SignedIn,
    state: &AppState,
    name: &ServerName,
    result: Result<T, E>,
    (to, note): (String, &str),
    forms: impl FnOnce(FieldErrors) -> Forms,
) -> PageResult {
    answer(
        result,
        |_| page.redirect_with(&to, Flash::ok(note)),
        |errors| {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_server(page, state, name, status, forms(errors))
        },
    )
    .await
}

fn server_name(state: &AppState, raw: &str) -> Result<ServerName, ApiError> {
    Ok(state.minecraft.server(raw)?)
}

pub async fn server_page(
    page: SignedIn,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> PageResult {
    page.require(P::MinecraftView)?;
    let name = server_name(&state, &name)?;
    render_server(&page, &state, &name, StatusCode::OK, Forms::default()).await
}

#[derive(Deserialize)]
pub struct ConsoleForm {
    #[serde(default)]
    pub command: String,
}

/// Runs a console command through the one command path (policy, actor, audit). With htmx the
/// answer is the transcript line, appended; without, the page again with it at the end.
pub async fn console(
    req: HttpRequest,
    form: PageForm<ConsoleForm>,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> PageResult {
    let (page, input) = form.into_parts();
    page.require(P::MinecraftCommand)?;
    let name = server_name(&state, &name)?;
    let result = async {
        let command = RconCommand::parse(&input.command)
            .map_err(|e| ApiError::invalid_field("command", e))?;
        let caller = caller_of(&state, &page, page.origin()).await?;
        Ok::<_, ApiError>(state.minecraft.command(&caller, &name, command).await?)
    }
    .await;
    let line = match result {
        Ok(answer) => {
            if !is_htmx(&req) {
                let note = match answer.audit {
                    AuditStatus::Recorded => Flash::ok(format!("Ran `{}`", answer.command)),
                    AuditStatus::Pending => Flash::error(format!(
                        "Ran `{}`, but its audit entry is not written yet (the database is slow); do not repeat it",
                        answer.command
                    )),
                };
                return Ok(page.redirect_with(&format!("/minecraft/servers/{name}#console"), note));
            }
            ConsoleLine {
                at: crate::ids::now_ms(),
                command: answer.command,
                output: answer.text,
                ok: true,
            }
        }
        Err(e) if is_htmx(&req) && !matches!(e, ApiError::Unauthorized) => ConsoleLine {
            at: crate::ids::now_ms(),
            command: input.command.clone(),
            output: e.to_string(),
            ok: false,
        },
        Err(e) => {
            let forms = Forms {
                console_command: input.command,
                console_errors: FieldErrors::from_api(e)?,
                ..Forms::default()
            };
            return render_server(
                &page,
                &state,
                &name,
                StatusCode::UNPROCESSABLE_ENTITY,
                forms,
            )
            .await;
        }
    };
    super::page::html(StatusCode::OK, ConsoleFragment { line })
}

pub async fn add_schedule(
    form: PageForm<ScheduleForm>,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> PageResult {
    let (page, input) = form.into_parts();
    page.require(P::MinecraftManage)?;
    let name = server_name(&state, &name)?;
    let result = async {
        let countdown_seconds = match input.countdown_seconds.trim() {
            "" => 0,
            raw => raw.parse().map_err(|_| {
                ApiError::invalid_field("countdown_seconds", "must be a number of seconds")
            })?,
        };
        let spec = ScheduleSpec {
            cron: input.cron.trim().to_owned(),
            command: input.command.clone(),
            only_when_empty: input.only_when_empty.is_some(),
            countdown_seconds,
            countdown_message: Some(input.countdown_message.trim().to_owned())
                .filter(|m| !m.is_empty()),
        };
        let caller = caller_of(&state, &page, page.origin()).await?;
        Ok::<_, ApiError>(state.minecraft.add_schedule(&caller, &name, spec).await?)
    }
    .await;
    let done = (
        format!("/minecraft/servers/{name}#schedules"),
        "Schedule added",
    );
    answer_on_server(&page, &state, &name, result, done, |schedule_errors| {
        Forms {
            schedule_errors,
            schedule: input,
            ..Forms::default()
        }
    })
    .await
}

#[derive(Deserialize)]
pub struct ScheduleChange {
    /// `pause`, `resume` or `delete`.
    pub op: String,
}

pub async fn change_schedule(
    form: PageForm<ScheduleChange>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> PageResult {
    let (page, input) = form.into_parts();
    page.require(P::MinecraftManage)?;
    let (name, id) = path.into_inner();
    let name = server_name(&state, &name)?;
    let id = parse_snowflake("id", &id)?;
    let caller = caller_of(&state, &page, page.origin()).await?;
    let message = match input.op.as_str() {
        "pause" | "resume" => {
            let enabled = input.op == "resume";
            state
                .minecraft
                .set_schedule_enabled(&caller, &name, id, enabled)
                .await
                .map_err(ApiError::from)?;
            if enabled {
                "Schedule resumed"
            } else {
                "Schedule paused"
            }
        }
        "delete" => {
            state
                .minecraft
                .remove_schedule(&caller, &name, id)
                .await
                .map_err(ApiError::from)?;
            "Schedule deleted"
        }
        other => {
            return Err(ApiError::invalid_field(
                "op",
                format!("`{other}` is not one of pause, resume, delete"),
            )
            .into());
        }
    };
    Ok(page.redirect_with(
        &format!("/minecraft/servers/{name}#schedules"),
        Flash::ok(message),
    ))
}

pub async fn edit_server(
    form: PageForm<EditServerForm>,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> PageResult {
    let (page, input) = form.into_parts();
    page.require(P::MinecraftManage)?;
    let name = server_name(&state, &name)?;
    let result = async {
        let patch = if name.is_default() {
            // `default` comes from the environment: only its guild links change here.
            ServerPatch {
                guilds: Some(guild_list(&input.guilds)),
                ..ServerPatch::default()
            }
        } else {
            ServerPatch {
                host: Some(input.host.trim().to_owned()),
                port: Some(port_of(&input.port)?),
                password: Some(input.password.as_str())
                    .filter(|p| !p.is_empty())
                    .map(|p| SecretString::from(p.to_owned())),
                enabled: Some(input.enabled.is_some()),
                guilds: Some(guild_list(&input.guilds)),
            }
        };
        let caller = caller_of(&state, &page, page.origin()).await?;
        Ok::<_, ApiError>(state.minecraft.update_server(&caller, &name, patch).await?)
    }
    .await;
    let done = (format!("/minecraft/servers/{name}"), "Server saved");
    answer_on_server(&page, &state, &name, result, done, |server_errors| Forms {
        server_errors,
        // As when adding: the password is never sent back.
        server: Some(EditServerForm {
            password: String::new(),
            ..input
        }),
        ..Forms::default()
    })
    .await
}

/// What the edit form shows: what was typed (after an error) or what is stored.
pub fn edit_values(row: &ServerRow, forms: &Forms) -> (String, String, String, bool) {
    match &forms.server {
        Some(f) => (
            f.host.clone(),
            f.port.clone(),
            f.guilds.clone(),
            f.enabled.is_some(),
        ),
        None => (
            row.info.host.clone(),
            row.info.port.to_string(),
            row.info.guilds.join(", "),
            row.info.enabled,
        ),
    }
}

/// A schedule's last run as a sentence.
pub fn last_run(s: &StoredSchedule) -> String {
    match (s.last_run_at, &s.last_outcome) {
        (Some(at), Some(outcome)) => format!("{} ({outcome})", super::time::short(at)),
        (Some(at), None) => super::time::short(at),
        (None, _) => "never".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guild_ids_may_be_typed_with_commas_spaces_or_new_lines() {
        assert_eq!(guild_list(" 1, 2\n3  "), ["1", "2", "3"]);
        assert!(guild_list("  ").is_empty());
    }

    #[test]
    fn a_blank_port_is_the_rcon_default_and_a_word_is_refused_naming_the_field() {
        assert_eq!(
            port_of("").unwrap(),
            i64::from(crate::config::DEFAULT_RCON_PORT)
        );
        assert_eq!(port_of(" 25576 ").unwrap(), 25576);
        assert!(port_of("abc").unwrap_err().to_string().starts_with("port:"));
    }
}
