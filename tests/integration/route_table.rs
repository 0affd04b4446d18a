//! Every declared route against every kind of caller: the expected outcome is derived from
//! the route's access rule and the caller's grants, so routes added later are covered too.

use guildhall::auth::rbac::{BUILTIN_ROLES, GLOBAL, Grants, Permission};
use guildhall::web::extract::{self, Access, RouteDecl};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::TestApp;
use crate::common::auth::{access_token, api_key, create_user, expired_token};
use crate::common::spawn_app;

/// The guild in every guild-scoped path.
const GUILD: i64 = 111_111_111_111_111_111;
const OTHER_GUILD: i64 = 222_222_222_222_222_222;
/// What the table's API key may do (a subset of its admin creator's permissions).
const KEY_PERMISSIONS: &[&str] = &["bot.view", "settings.read", "audit.read", "api_keys.manage"];

#[derive(Debug, Clone, Copy)]
enum Caller {
    Admin,
    Moderator,
    ModeratorOfGuild,
    ModeratorOfOtherGuild,
    Viewer,
    NoToken,
    Expired,
    ApiKey,
}

const CALLERS: &[Caller] = &[
    Caller::Admin,
    Caller::Moderator,
    Caller::ModeratorOfGuild,
    Caller::ModeratorOfOtherGuild,
    Caller::Viewer,
    Caller::NoToken,
    Caller::Expired,
    Caller::ApiKey,
];

fn role_grants(role: &str, guild: i64) -> Grants {
    let mut g = Grants::default();
    for p in BUILTIN_ROLES
        .iter()
        .find(|r| r.name == role)
        .unwrap()
        .permissions
    {
        g.add(guild, *p);
    }
    g
}

/// `None`: unauthenticated (expect 401 unless public).
fn grants_of(caller: Caller) -> Option<Grants> {
    Some(match caller {
        Caller::Admin => role_grants("admin", GLOBAL),
        Caller::Moderator => role_grants("moderator", GLOBAL),
        Caller::ModeratorOfGuild => role_grants("moderator", GUILD),
        Caller::ModeratorOfOtherGuild => role_grants("moderator", OTHER_GUILD),
        Caller::Viewer => role_grants("viewer", GLOBAL),
        Caller::ApiKey => {
            let mut g = Grants::default();
            for p in KEY_PERMISSIONS {
                g.add(GLOBAL, p.parse::<Permission>().unwrap());
            }
            g
        }
        Caller::NoToken | Caller::Expired => return None,
    })
}

/// `AnyGuild` routes are called with `?guild=GUILD`: a caller holding the permission only in
/// another guild gets past the route's check, and the handler narrows (empty result or 403).
fn allowed(access: Access, grants: &Grants) -> bool {
    match access {
        Access::Public | Access::SignedIn => true,
        Access::Global(p) => grants.allows_globally(p),
        Access::Guild(p, _) | Access::AnyGuild(p) => grants.allows(p, Some(GUILD)),
    }
}

fn narrowed_by_handler(access: Access, grants: &Grants) -> bool {
    matches!(access, Access::AnyGuild(p) if grants.allows_anywhere(p))
}

/// A fresh credential per call, so a route that signs out cannot spoil the next row.
async fn credential(app: &TestApp, caller: Caller) -> Option<String> {
    let (role, guild) = match caller {
        Caller::Admin | Caller::ApiKey => ("admin", GLOBAL),
        Caller::Moderator => ("moderator", GLOBAL),
        Caller::ModeratorOfGuild => ("moderator", GUILD),
        Caller::ModeratorOfOtherGuild => ("moderator", OTHER_GUILD),
        Caller::Viewer => ("viewer", GLOBAL),
        Caller::NoToken => return None,
        Caller::Expired => ("admin", GLOBAL),
    };
    let (id, _) = create_user(app, "caller", &[(role, guild)]).await;
    Some(match caller {
        Caller::Expired => expired_token(app, id),
        Caller::ApiKey => api_key(app, id, KEY_PERMISSIONS, None).await,
        _ => access_token(app, id),
    })
}

/// Fills path parameters: guild ids with [`GUILD`], module names with a real module, other
/// ids with one that exists nowhere.
fn concrete_path(route: &RouteDecl) -> String {
    route
        .path
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) if name.contains("guild") => GUILD.to_string(),
                Some("module") => "moderation".to_owned(),
                Some(_) => "4242".to_owned(),
                None => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
        + if matches!(route.access, Access::AnyGuild(_)) {
            format!("?guild={GUILD}")
        } else {
            String::new()
        }
        .as_str()
}

#[actix_web::test]
async fn every_route_answers_every_kind_of_caller_as_its_access_rule_says() {
    let app = spawn_app().await;
    let routes = extract::declared_routes();
    let mut failures = Vec::new();
    let mut rows = 0;
    for route in &routes {
        let path = concrete_path(route);
        for caller in CALLERS {
            let token = credential(&app, *caller).await;
            let body = (route.method != "GET").then(|| json!({}));
            let (status, response) = app
                .call(route.method.as_str(), &path, token.as_deref(), body)
                .await;
            rows += 1;
            let expected = match (route.access, grants_of(*caller)) {
                (Access::Public, _) => "not 401/403",
                (_, None) => "401",
                (access, Some(g)) if allowed(access, &g) => "not 401/403",
                (access, Some(g)) if narrowed_by_handler(access, &g) => "not 401",
                _ => "403",
            };
            let ok = match expected {
                "401" => status == StatusCode::UNAUTHORIZED,
                "403" => status == StatusCode::FORBIDDEN,
                "not 401" => status != StatusCode::UNAUTHORIZED,
                _ => status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            } && !status.is_server_error();
            if !ok {
                failures.push(format!(
                    "{} {} as {caller:?}: got {status}, expected {expected}: {response}",
                    route.method, route.path
                ));
            }
        }
    }
    assert!(rows >= routes.len() * CALLERS.len());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[actix_web::test]
async fn every_read_route_answers_2xx_to_an_admin() {
    let app = spawn_app().await;
    let admin = crate::common::auth::admin_token(&app).await;
    for route in extract::declared_routes() {
        if route.method != "GET" || route.path.contains('{') {
            continue;
        }
        let (status, body) = app.call("GET", &route.path, Some(&admin), None).await;
        assert!(status.is_success(), "GET {}: {status} {body}", route.path);
    }
}

#[actix_web::test]
async fn a_viewer_calling_every_write_endpoint_is_refused_and_nothing_changes() {
    let app = spawn_app().await;
    let (id, _) = create_user(&app, "viewer", &[("viewer", GLOBAL)]).await;
    let token = access_token(&app, id);
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    let viewer = role_grants("viewer", GLOBAL);
    let mut checked = 0;
    for route in extract::declared_routes() {
        if route.method == "GET" || route.access.permission().is_none() {
            continue;
        }
        if allowed(route.access, &viewer) {
            continue;
        }
        let body =
            json!({ "name": "x", "permissions": ["users.manage"], "registration_open": true });
        let (status, response) = app
            .call(
                route.method.as_str(),
                &concrete_path(&route),
                Some(&token),
                Some(body),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{} {}: {response}",
            route.method,
            route.path
        );
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} write routes");
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(
        before, after,
        "a refused write must leave no trace but the refusal"
    );
}
