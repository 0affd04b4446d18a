//! The administration pages: users (create, disable, roles with guild scope), invites and the
//! instance settings (`/admin`), roles and their permissions (`/admin/roles`) and API keys
//! (`/admin/api-keys`: the key shown once at creation, list, revoke). Each form calls the same
//! service function as its `/api/v1` route (`services::admin`), so the same checks apply:
//! nobody hands out more than they hold, and the last administrator stays.

use actix_web::http::StatusCode;
use actix_web::web;
use sailfish::TemplateSimple;
use secrecy::{ExposeSecret, SecretString};

use super::form::answer;
use super::page::see_other;
use super::{Chrome, FieldErrors, Flash, PageForm, PageResult, SignedIn};
use crate::auth::rbac::Permission as P;
use crate::ids::now_ms;
use crate::services::admin::{
    Acting, GrantRequest, NewKey, NewRole, NewUser, RoleChange, UserChange,
};
use crate::state::AppState;
use crate::web::api::api_keys::KeyView;
use crate::web::api::roles::RoleView;
use crate::web::api::users::UserView;
use crate::web::error::ApiError;
use crate::web::extract::parse_snowflake;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin").route(web::get().to(users_page)))
        .service(web::resource("/admin/users").route(web::post().to(create_user)))
        .service(web::resource("/admin/users/{id}").route(web::post().to(update_user)))
        .service(web::resource("/admin/invites").route(web::post().to(create_invite)))
        .service(web::resource("/admin/instance").route(web::post().to(save_instance)))
        .service(
            web::resource("/admin/roles")
                .route(web::get().to(roles_page))
                .route(web::post().to(create_role)),
        )
        .service(web::resource("/admin/roles/{id}").route(web::post().to(update_role)))
        .service(
            web::resource("/admin/api-keys")
                .route(web::get().to(keys_page))
                .route(web::post().to(create_key)),
        )
        .service(web::resource("/admin/api-keys/{id}/revoke").route(web::post().to(revoke_key)));
}

/// A posted form as its fields in order (checkbox groups repeat a name).
type Fields = Vec<(String, String)>;

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn all(fields: &Fields, name: &str) -> Vec<String> {
    fields
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// The administration sub-pages the caller may open, for the links at the top.
pub fn tabs(page: &SignedIn) -> Vec<(&'static str, &'static str)> {
    [
        ("/admin", "Users", P::UsersManage),
        ("/admin/roles", "Roles", P::RolesManage),
        ("/admin/api-keys", "API keys", P::ApiKeysManage),
    ]
    .into_iter()
    .filter(|(_, _, p)| page.can(*p, None))
    .map(|(href, label, _)| (href, label))
    .collect()
}

/// Grants typed as `role` or `role@guild_id`, separated by commas or spaces.
fn parse_grants(raw: &str) -> Result<Vec<GrantRequest>, ApiError> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let (role, guild) = match entry.split_once('@') {
                Some((role, guild)) => (role, Some(parse_snowflake("roles", guild)?)),
                None => (entry, None),
            };
            Ok(GrantRequest {
                role: role.to_owned(),
                guild_id: guild,
            })
        })
        .collect()
}

/// A user's grants as the roles field shows them.
pub fn grants_text(user: &UserView) -> String {
    user.roles
        .iter()
        .map(|g| match g.guild_id {
            Some(guild) => format!("{}@{guild}", g.role),
            None => g.role.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ---- users, invites, instance ------------------------------------------------------------------

#[derive(TemplateSimple)]
#[template(path = "pages/admin_users.stpl")]
struct UsersPage {
    chrome: Chrome,
    tabs: Vec<(&'static str, &'static str)>,
    users: Vec<UserView>,
    registration_open: bool,
    /// Shown once, right after it was made.
    invite: Option<(String, i64)>,
    form: Fields,
    errors: FieldErrors,
    /// The user whose row shows an error, and the error.
    row_error: Option<(i64, String)>,
}

async fn render_users(
    page: &SignedIn,
    state: &AppState,
    status: StatusCode,
    invite: Option<(String, i64)>,
    form: Fields,
    errors: FieldErrors,
    row_error: Option<(i64, String)>,
) -> PageResult {
    page.render_status(
        status,
        UsersPage {
            chrome: page.chrome("Administration"),
            tabs: tabs(page),
            users: state
                .admin
                .list_users()
                .await?
                .into_iter()
                .map(UserView::from)
                .collect(),
            registration_open: state.admin.registration_open().await?,
            invite,
            form,
            errors,
            row_error,
        },
    )
}

pub async fn users_page(page: SignedIn, state: web::Data<AppState>) -> PageResult {
    if !page.can(P::UsersManage, None) {
        // Someone who may manage only roles or keys lands on what they may open.
        if let Some((href, _)) = tabs(&page).first() {
            return Ok(see_other(href));
        }
        return Err(ApiError::Forbidden.into());
    }
    render_users(
        &page,
        &state,
        StatusCode::OK,
        None,
        Fields::new(),
        FieldErrors::new(),
        None,
    )
    .await
}

pub async fn create_user(form: PageForm<Fields>, state: web::Data<AppState>) -> PageResult {
    let (page, input) = form.into_parts();
    page.require(P::UsersManage)?;
    let result: Result<_, ApiError> = async {
        let new = NewUser {
            username: field(&input, "username").trim().to_owned(),
            password: SecretString::from(field(&input, "password").to_owned()),
            roles: parse_grants(field(&input, "roles"))?,
        };
        let acting = Acting::new(&page, page.origin());
        Ok(state.admin.create_user(&acting, new).await?)
    }
    .await;
    answer(
        result,
        |user| {
            page.redirect_with(
                "/admin",
                Flash::ok(format!("User {} created", user.username)),
            )
        },
        |errors| {
            let kept: Fields = input.into_iter().filter(|(k, _)| k != "password").collect();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_users(&page, &state, status, None, kept, errors, None)
        },
    )
    .await
}

/// `op=disable|enable`, or `op=roles` with the `roles` field.
pub async fn update_user(
    form: PageForm<Fields>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> PageResult {
    let (page, input) = form.into_parts();
    page.require(P::UsersManage)?;
    let id = parse_snowflake("id", &id)?;
    let result: Result<_, ApiError> = async {
        let change = match field(&input, "op") {
            "disable" => UserChange {
                roles: None,
                disabled: Some(true),
            },
            "enable" => UserChange {
                roles: None,
                disabled: Some(false),
            },
            "roles" => UserChange {
                roles: Some(parse_grants(field(&input, "roles"))?),
                disabled: None,
            },
            other => {
                return Err(ApiError::invalid_field(
                    "op",
                    format!("`{other}` is not one of disable, enable, roles"),
                ));
            }
        };
        let acting = Acting::new(&page, page.origin());
        Ok(state.admin.update_user(&acting, id, change).await?)
    }
    .await;
    answer(
        result,
        |user| page.redirect_with("/admin", Flash::ok(format!("User {} saved", user.username))),
        // A refusal the user can read (not allowed, last administrator, bad role) goes on the
        // row; anything else is an error page.
        |errors| {
            let row_error = Some((id, errors.one_line(&["roles"])));
            let (status, none) = (StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::new());
            render_users(&page, &state, status, None, Fields::new(), none, row_error)
        },
    )
    .await
}

pub async fn create_invite(form: PageForm<Fields>, state: web::Data<AppState>) -> PageResult {
    let (page, _) = form.into_parts();
    page.require(P::UsersManage)?;
    let invite = state
        .admin
        .invite(&Acting::new(&page, page.origin()))
        .await?;
    render_users(
        &page,
        &state,
        StatusCode::OK,
        Some((invite.invite.expose_secret().to_owned(), invite.expires_at)),
        Fields::new(),
        FieldErrors::new(),
        None,
    )
    .await
}

pub async fn save_instance(form: PageForm<Fields>, state: web::Data<AppState>) -> PageResult {
    let (page, input) = form.into_parts();
    page.require(P::UsersManage)?;
    let open = field(&input, "registration_open") == "on";
    state
        .admin
        .set_registration_open(&Acting::new(&page, page.origin()), open)
        .await?;
    Ok(page.redirect_with("/admin#instance", Flash::ok("Instance settings saved")))
}

// ---- roles -------------------------------------------------------------------------------------

#[derive(TemplateSimple)]
#[template(path = "pages/admin_roles.stpl")]
struct RolesPage {
    chrome: Chrome,
    tabs: Vec<(&'static str, &'static str)>,
    roles: Vec<RoleView>,
    form: Fields,
    errors: FieldErrors,
    row_error: Option<(i64, String)>,
}

async fn render_roles(
    page: &SignedIn,
    state: &AppState,
    status: StatusCode,
    form: Fields,
    errors: FieldErrors,
    row_error: Option<(i64, String)>,
) -> PageResult {
    page.render_status(
        status,
        RolesPage {
            chrome: page.chrome("Roles"),
            tabs: tabs(page),
            roles: state
                .admin
                .list_roles()
                .await?
                .into_iter()
                .map(RoleView::from)
                .collect(),
            form,
            errors,
            row_error,
        },
    )
}

pub async fn roles_page(page: SignedIn, state: web::Data<AppState>) -> PageResult {
    page.require(P::RolesManage)?;
    render_roles(
        &page,
        &state,
        StatusCode::OK,
        Fields::new(),
        FieldErrors::new(),
        None,
    )
    .await
}

pub async fn create_role(form: PageForm<Fields>, state: web::Data<AppState>) -> PageResult {
    let (page, input) = form.into_parts();
    page.require(P::RolesManage)?;
    let new = NewRole {
        name: field(&input, "name").trim().to_owned(),
        description: field(&input, "description").trim().to_owned(),
        permissions: all(&input, "permissions"),
        require_mfa: field(&input, "require_mfa") == "on",
    };
    let acting = Acting::new(&page, page.origin());
    answer(
        state.admin.create_role(&acting, new).await,
        |role| {
            page.redirect_with(
                "/admin/roles",
                Flash::ok(format!("Role {} created", role.name)),
            )
        },
        |errors| {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_roles(&page, &state, status, input, errors, None)
        },
    )
    .await
}

pub async fn update_role(
    form: PageForm<Fields>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> PageResult {
    let (page, input) = form.into_parts();
    page.require(P::RolesManage)?;
    let id = parse_snowflake("id", &id)?;
    let change = RoleChange {
        description: Some(field(&input, "description").trim().to_owned()),
        permissions: Some(all(&input, "permissions")),
        require_mfa: Some(field(&input, "require_mfa") == "on"),
    };
    let acting = Acting::new(&page, page.origin());
    answer(
        state.admin.update_role(&acting, id, change).await,
        |role| {
            page.redirect_with(
                "/admin/roles",
                Flash::ok(format!("Role {} saved", role.name)),
            )
        },
        // As for a user: a refusal the user can read goes on the role's row.
        |errors| {
            let row_error = Some((id, errors.one_line(&["permissions", "description"])));
            let (status, none) = (StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::new());
            render_roles(&page, &state, status, Fields::new(), none, row_error)
        },
    )
    .await
}

// ---- API keys ----------------------------------------------------------------------------------

#[derive(TemplateSimple)]
#[template(path = "pages/admin_keys.stpl")]
struct KeysPage {
    chrome: Chrome,
    tabs: Vec<(&'static str, &'static str)>,
    keys: Vec<KeyView>,
    /// Permissions the caller may put in a key (what it holds somewhere).
    grantable: Vec<P>,
    /// The new key, shown only on the page that answers its creation.
    created: Option<(String, String)>,
    form: Fields,
    errors: FieldErrors,
}

async fn render_keys(
    page: &SignedIn,
    state: &AppState,
    status: StatusCode,
    created: Option<(String, String)>,
    form: Fields,
    errors: FieldErrors,
) -> PageResult {
    let grantable = P::ALL
        .iter()
        .copied()
        .filter(|p| page.can_anywhere(*p))
        .collect();
    page.render_status(
        status,
        KeysPage {
            chrome: page.chrome("API keys"),
            tabs: tabs(page),
            keys: state
                .admin
                .list_keys(page)
                .await?
                .into_iter()
                .map(KeyView::from)
                .collect(),
            grantable,
            created,
            form,
            errors,
        },
    )
}

pub async fn keys_page(page: SignedIn, state: web::Data<AppState>) -> PageResult {
    page.require(P::ApiKeysManage)?;
    render_keys(
        &page,
        &state,
        StatusCode::OK,
        None,
        Fields::new(),
        FieldErrors::new(),
    )
    .await
}

const DAY_MS: i64 = 24 * 3600 * 1000;

pub async fn create_key(form: PageForm<Fields>, state: web::Data<AppState>) -> PageResult {
    let (page, input) = form.into_parts();
    page.require(P::ApiKeysManage)?;
    let result: Result<_, ApiError> = async {
        let guild_id = match field(&input, "guild_id").trim() {
            "" => None,
            raw => Some(parse_snowflake("guild_id", raw)?),
        };
        let expires_at = match field(&input, "expires_days").trim() {
            "" => None,
            raw => {
                let days: i64 = raw.parse().map_err(|_| {
                    ApiError::invalid_field("expires_days", "must be a number of days")
                })?;
                if !(1..=731).contains(&days) {
                    return Err(ApiError::invalid_field(
                        "expires_days",
                        "must be 1 to 731 days",
                    ));
                }
                Some(now_ms() + days * DAY_MS)
            }
        };
        let new = NewKey {
            name: field(&input, "name").trim().to_owned(),
            permissions: all(&input, "permissions"),
            guild_id,
            expires_at,
        };
        let acting = Acting::new(&page, page.origin());
        Ok(state.admin.create_key(&acting, new).await?)
    }
    .await;
    match result {
        // Rendered, not redirected: the key must not travel in a cookie or a URL.
        Ok(created) => {
            render_keys(
                &page,
                &state,
                StatusCode::CREATED,
                Some((
                    created.api_key.name.clone(),
                    created.key.expose_secret().to_owned(),
                )),
                Fields::new(),
                FieldErrors::new(),
            )
            .await
        }
        Err(e) => {
            let errors = FieldErrors::from_api(e)?;
            render_keys(
                &page,
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                input,
                errors,
            )
            .await
        }
    }
}

pub async fn revoke_key(
    form: PageForm<Fields>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> PageResult {
    let (page, _) = form.into_parts();
    page.require(P::ApiKeysManage)?;
    let id = parse_snowflake("id", &id)?;
    state
        .admin
        .revoke_key(&Acting::new(&page, page.origin()), id)
        .await?;
    Ok(page.redirect_with("/admin/api-keys", Flash::ok("API key revoked")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_typed_as_role_or_role_at_guild() {
        let grants = parse_grants("viewer, moderator@123456789012345678").unwrap();
        assert_eq!(grants.len(), 2);
        assert_eq!(grants[0].role, "viewer");
        assert!(grants[0].guild_id.is_none());
        assert_eq!(grants[1].guild_id, Some(123_456_789_012_345_678));
        assert!(parse_grants("moderator@guild").is_err());
        assert!(parse_grants("  ").unwrap().is_empty());
    }
}
