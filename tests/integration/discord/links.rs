//! Minecraft accounts linked to Discord members, end to end: the real bot against the fake
//! Discord and a fake Minecraft server whose whitelist, `tellraw` and `kick` answer as
//! Minecraft does. The whitelist follows the guild's Minecraft role (the `member` role here).

use std::time::Duration;

use guildhall::clock::{Clock, ManualClock};
use guildhall::store::audit::{self, AuditEntry, AuditFilter};
use guildhall::store::minecraft_links::{self as links, NewLink};
use serde_json::{Value, json};

use reqwest::StatusCode;

use super::{GUILD, WAIT, connected_at, content, invoke};
use crate::common::auth::admin_token;
use crate::common::fake_discord::{FakeDiscord, MEMBER, MODERATOR, OTHER_MEMBER, Opt};
use crate::common::fake_rcon::FakeRcon;
use crate::common::{TestApp, eventually};

/// The standard guild's `member` role: the Minecraft role in these tests.
pub(crate) const ROLE: u64 = GUILD + 1;
const PASSWORD: &str = "links-rcon-pw";

/// Also the setting of the links page's tests (`links_pages`, `browser::links_flow`).
pub(crate) struct World {
    pub(crate) fake: FakeDiscord,
    pub(crate) app: TestApp,
    pub(crate) rcon: FakeRcon,
    pub(crate) admin: String,
}

/// The bot connected to a guild whose Minecraft module is on and whose Minecraft role is
/// set, with `default` pointing at a fake server where Steve and Alex are online.
pub(crate) async fn world(clock: Clock) -> World {
    let rcon = FakeRcon::start(PASSWORD);
    rcon.set_players(&["Steve", "Alex"]);
    let rcon_env = rcon.env();
    let (fake, app) = connected_at(clock, move |env| {
        env.extend(rcon_env);
        env.insert("GUILDHALL_RCON_TIMEOUT_MS".into(), "2000".into());
    })
    .await;
    invoke(
        &fake,
        crate::common::fake_discord::ADMIN,
        "module",
        vec![Opt::sub("enable", vec![Opt::string("module", "minecraft")])],
    )
    .await;
    let admin = admin_token(&app).await;
    set_minecraft_role(&app, &admin, GUILD as i64, ROLE as i64).await;
    World {
        fake,
        app,
        rcon,
        admin,
    }
}

impl World {
    /// `/mc <sub>` from the member `who`, with string options; the text of the bot's reply.
    async fn mc(&self, who: u64, sub: &str, options: &[(&str, &str)]) -> String {
        let options = options.iter().map(|(k, v)| Opt::string(k, v)).collect();
        content(&invoke(&self.fake, who, "mc", vec![Opt::sub(sub, options)]).await)
    }

    /// `PUT /api/v1/guilds/{guild}/minecraft/links/{user}` as the admin: links `name`.
    async fn put_link(&self, user: u64, name: &str) -> (StatusCode, Value) {
        self.app
            .call(
                "PUT",
                &link_path(user),
                Some(&self.admin),
                Some(json!({"minecraft_name": name})),
            )
            .await
    }

    /// `DELETE` of the same: unlinks the member.
    async fn delete_link(&self, user: u64) -> (StatusCode, Value) {
        self.app
            .call("DELETE", &link_path(user), Some(&self.admin), None)
            .await
    }

    /// `POST .../minecraft/whitelist/reconcile` as the admin.
    async fn reconcile(&self) -> (StatusCode, Value) {
        self.app
            .call(
                "POST",
                &format!("/api/v1/guilds/{GUILD}/minecraft/whitelist/reconcile"),
                Some(&self.admin),
                None,
            )
            .await
    }
}

fn link_path(user: u64) -> String {
    format!("/api/v1/guilds/{GUILD}/minecraft/links/{user}")
}

async fn entries(app: &TestApp, action: &str) -> Vec<AuditEntry> {
    audit::list(
        &app.state.store,
        &AuditFilter {
            action: Some(action.into()),
            limit: 500,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn causes(app: &TestApp, action: &str, name: &str) -> Vec<String> {
    let mut found: Vec<String> = entries(app, action)
        .await
        .iter()
        .filter(|e| e.details["minecraft_name"] == name && e.details["ok"] == true)
        .map(|e| e.details["cause"].as_str().unwrap_or_default().to_owned())
        .collect();
    found.reverse(); // oldest first
    found
}

/// `GET /api/v1/guilds/{GUILD}/minecraft/links` as the admin; it must answer.
pub(crate) async fn links_of(w: &World) -> Value {
    let (status, body) = w
        .app
        .call(
            "GET",
            &format!("/api/v1/guilds/{GUILD}/minecraft/links"),
            Some(&w.admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[actix_web::test]
async fn a_member_links_with_the_code_whispered_in_game_and_is_whitelisted_for_holding_the_role() {
    let w = world(Clock::System).await;
    let reply = w.mc(MEMBER, "link", &[("name", "steve")]).await;
    assert!(reply.contains("whispered"), "{reply}");
    let code = w
        .rcon
        .whispered_code("Steve")
        .expect("a code was whispered to Steve");
    assert_eq!(code.len(), 6, "{code}");
    // Only a hash is stored, never the code.
    let stored = links::code(&w.app.state.store, GUILD as i64, MEMBER as i64)
        .await
        .unwrap()
        .expect("pending code");
    assert!(!stored.code_hash.contains(&code));

    let text = w
        .mc(MEMBER, "verify", &[("code", &code.to_lowercase())])
        .await;
    assert!(
        text.contains("Linked to the Minecraft account `Steve`"),
        "{text}"
    );
    assert!(text.contains("added to the whitelist"), "{text}");
    assert!(w.rcon.is_whitelisted("Steve"));
    assert_eq!(
        causes(&w.app, "minecraft.whitelist_add", "Steve").await,
        ["link"]
    );

    // The API lists the link: member, name, linked at, whitelisted.
    let body = links_of(&w).await;
    let link = &body["links"][0];
    assert_eq!(link["discord_user_id"], MEMBER.to_string(), "{body}");
    assert_eq!(link["minecraft_name"], "Steve");
    assert_eq!(link["whitelisted"], true);
    assert!(link["linked_at"].as_i64().is_some());
    assert_eq!(body["server"], "default");
    assert_eq!(body["minecraft_role"], ROLE.to_string());

    // A code is single-use.
    let reply = w.mc(MEMBER, "verify", &[("code", &code)]).await;
    assert!(reply.contains("no link code is pending"), "{reply}");

    // `/mc unlink` takes the name off the whitelist first, then forgets the link.
    let reply = w.mc(MEMBER, "unlink", &[]).await;
    assert!(reply.contains("removed from the whitelist"), "{reply}");
    assert!(!w.rcon.is_whitelisted("Steve"));
    assert_eq!(
        causes(&w.app, "minecraft.whitelist_remove", "Steve").await,
        ["unlink"]
    );
    assert_eq!(entries(&w.app, "minecraft.unlink").await.len(), 1);
    assert_eq!(links_of(&w).await["links"], json!([]));
}

#[actix_web::test]
async fn bad_link_input_gets_a_clear_answer_and_changes_nothing() {
    let clock = ManualClock::at_window_start(Duration::from_secs(600));
    let w = world(clock.clone().into()).await;
    let store = &w.app.state.store;

    // Not a Minecraft name: refused before anything reaches the server.
    let before = w.rcon.commands().len();
    let reply = w.mc(MEMBER, "link", &[("name", "no way")]).await;
    assert!(reply.contains("is not a Minecraft player name"), "{reply}");
    assert_eq!(w.rcon.commands().len(), before);

    // A player who is not online gets no code.
    let reply = w.mc(MEMBER, "link", &[("name", "Notch")]).await;
    assert!(reply.contains("Notch is not online"), "{reply}");
    assert!(w.rcon.whispers().is_empty());
    assert!(
        links::code(store, GUILD as i64, MEMBER as i64)
            .await
            .unwrap()
            .is_none()
    );

    // A wrong code says how many tries are left; the right one still works after it.
    w.mc(MEMBER, "link", &[("name", "Alex")]).await;
    let code = w.rcon.whispered_code("Alex").expect("code");
    let reply = w.mc(MEMBER, "verify", &[("code", "WRONG1")]).await;
    assert!(reply.contains("wrong (4 attempts left)"), "{reply}");

    // Ten minutes later the code has expired: no link.
    clock.advance(Duration::from_secs(601));
    let reply = w.mc(MEMBER, "verify", &[("code", &code)]).await;
    assert!(reply.contains("expired"), "{reply}");
    assert!(
        links::of_member(store, GUILD as i64, MEMBER as i64)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!w.rcon.is_whitelisted("Alex"));

    // A name linked to one member cannot be linked to another.
    let (status, body) = w.put_link(OTHER_MEMBER, "Alex").await;
    assert_eq!(status, 201, "{body}");
    let reply = w.mc(MEMBER, "link", &[("name", "ALEX")]).await;
    assert!(reply.contains("already linked to a member"), "{reply}");
    let (status, body) = w.put_link(MODERATOR, "alex").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "minecraft_name_taken");
    // Bad names and strangers through the API, each with its own code.
    for (user, name, status_code, code) in [
        (MODERATOR, "x", 400, "invalid_minecraft_name"),
        (MODERATOR, "has space", 400, "invalid_minecraft_name"),
        (4_242_424_242_424_242, "Nobody", 404, "member_not_found"),
    ] {
        let (status, body) = w.put_link(user, name).await;
        assert_eq!(status, status_code, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
    }
    let (status, body) = w.delete_link(MODERATOR).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].clone()),
        (404, json!("not_linked"))
    );

    // `/mc link` is rate-limited per member (the clock stands still, so the window too).
    let mut limited = false;
    for _ in 0..4 {
        let reply = w.mc(MODERATOR, "link", &[("name", "Steve")]).await;
        limited |= reply.contains("too many attempts");
    }
    assert!(limited, "four /mc link in a window were all accepted");
}

#[actix_web::test]
async fn role_changes_and_leaving_move_the_member_on_and_off_the_whitelist_with_their_cause() {
    let w = world(Clock::System).await;
    let (status, body) = w.put_link(MEMBER, "Steve").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["whitelisted"], true, "{body}");
    assert!(w.rcon.is_whitelisted("Steve"));

    w.fake.change_member_roles(0, GUILD, MEMBER, vec![]);
    assert!(eventually(WAIT, || async { !w.rcon.is_whitelisted("Steve") }).await);
    w.fake.change_member_roles(0, GUILD, MEMBER, vec![ROLE]);
    assert!(eventually(WAIT, || async { w.rcon.is_whitelisted("Steve") }).await);
    // Kicking on removal is an option of the guild's server; Steve is online.
    let (status, body) = w
        .app
        .call(
            "PUT",
            &format!("/api/v1/guilds/{GUILD}/minecraft/whitelist/options"),
            Some(&w.admin),
            Some(json!({"kick_on_remove": true})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    w.fake.member_leaves(0, GUILD, MEMBER);
    assert!(eventually(WAIT, || async { !w.rcon.is_whitelisted("Steve") }).await);
    assert!(eventually(WAIT, || async { w.rcon.count_prefix("kick Steve") == 1 }).await);

    assert!(
        eventually(WAIT, || async {
            causes(&w.app, "minecraft.whitelist_remove", "Steve").await
                == ["role_removed", "member_left"]
        })
        .await,
        "{:?}",
        causes(&w.app, "minecraft.whitelist_remove", "Steve").await
    );
    assert_eq!(
        causes(&w.app, "minecraft.whitelist_add", "Steve").await,
        ["link", "role_added"]
    );
    assert!(
        eventually(WAIT, || async {
            entries(&w.app, "minecraft.kick").await.len() == 1
        })
        .await
    );
    // The link stays, off the whitelist, marked as having left.
    let body = links_of(&w).await;
    assert_eq!(body["links"][0]["whitelisted"], false, "{body}");
    assert_eq!(body["links"][0]["in_guild"], false, "{body}");
}

/// The role taken away and given back with no pause between the two events: they are
/// applied in the order Discord sent them, so the second wins. (Handled at the same time,
/// the second read the whitelist state the first had not recorded yet and did nothing.)
#[actix_web::test]
async fn a_role_taken_away_and_given_back_at_once_leaves_the_member_whitelisted() {
    let w = world(Clock::System).await;
    let (status, body) = w.put_link(MEMBER, "Steve").await;
    assert_eq!(status, 201, "{body}");
    w.fake.change_member_roles(0, GUILD, MEMBER, vec![]);
    w.fake.change_member_roles(0, GUILD, MEMBER, vec![ROLE]);
    assert!(
        eventually(WAIT, || async {
            causes(&w.app, "minecraft.whitelist_add", "Steve").await == ["link", "role_added"]
        })
        .await,
        "adds {:?}, removes {:?}",
        causes(&w.app, "minecraft.whitelist_add", "Steve").await,
        causes(&w.app, "minecraft.whitelist_remove", "Steve").await
    );
    assert_eq!(
        causes(&w.app, "minecraft.whitelist_remove", "Steve").await,
        ["role_removed"]
    );
    assert!(w.rcon.is_whitelisted("Steve"));
    let body = links_of(&w).await;
    assert_eq!(body["links"][0]["whitelisted"], true, "{body}");
}

#[actix_web::test]
async fn an_rcon_outage_refuses_links_and_unlinks_and_leaves_nothing_half_done() {
    let mut w = world(Clock::System).await;
    w.rcon.refuse();
    let (status, body) = w.put_link(MEMBER, "Steve").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    assert_eq!(links_of(&w).await["links"], json!([]));
    assert!(entries(&w.app, "minecraft.whitelist_add").await.is_empty());
    assert!(entries(&w.app, "minecraft.link").await.is_empty());
    // `/mc link` says the server is unavailable rather than that the player is offline.
    let reply = w.mc(MEMBER, "link", &[("name", "Steve")]).await;
    assert!(reply.contains("unavailable"), "{reply}");

    w.rcon.come_back();
    assert!(
        eventually(WAIT, || async {
            w.put_link(MEMBER, "Steve").await.0 == 201
        })
        .await
    );
    assert!(w.rcon.is_whitelisted("Steve"));
    w.rcon.refuse();
    let (status, body) = w.delete_link(MEMBER).await;
    assert_eq!(status, 503, "{body}");
    // Still linked and still recorded as whitelisted: nothing was half-done.
    let body = links_of(&w).await;
    assert_eq!(body["links"][0]["whitelisted"], true, "{body}");
    assert!(entries(&w.app, "minecraft.unlink").await.is_empty());
}

/// Sets the guild's Minecraft role through the API, as `admin`.
pub(crate) async fn set_minecraft_role(app: &TestApp, admin: &str, guild: i64, role: i64) {
    let (status, body) = app
        .call(
            "PATCH",
            &format!("/api/v1/settings/{guild}"),
            Some(admin),
            Some(json!({"minecraft_role": role.to_string()})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Seeds a link on `default` in the standard guild straight into the store (as an earlier
/// link would be).
async fn seed(app: &TestApp, user: i64, name: &str, roles: Vec<i64>, whitelisted: bool) {
    seed_link(app, GUILD as i64, user, name, roles, whitelisted).await;
}

/// Seeds a link on `default` in `guild` straight into the store.
pub(crate) async fn seed_link(
    app: &TestApp,
    guild: i64,
    user: i64,
    name: &str,
    roles: Vec<i64>,
    whitelisted: bool,
) {
    links::insert(
        &app.state.store,
        &NewLink {
            guild_id: guild,
            server: "default".into(),
            discord_user_id: user,
            minecraft_name: name.into(),
            roles,
            whitelisted,
            linked_by: "test".into(),
        },
    )
    .await
    .unwrap()
    .unwrap();
}

#[actix_web::test]
async fn a_reconciliation_sends_only_the_difference_and_leaves_unmanaged_names_alone() {
    let w = world(Clock::System).await;
    let role = ROLE as i64;
    seed(&w.app, 1, "Holder", vec![role], false).await;
    seed(&w.app, 2, "Leaver", vec![], true).await;
    seed(&w.app, 3, "Kept", vec![role], true).await;
    w.rcon.set_whitelist(&["Leaver", "Kept", "Operator"]);
    let before = w.rcon.commands().len();
    let (status, report) = w.reconcile().await;
    assert_eq!(status, 200, "{report}");
    let sent = w.rcon.commands()[before..].to_vec();
    assert_eq!(
        sent.iter()
            .filter(|c| c.starts_with("whitelist"))
            .cloned()
            .collect::<Vec<_>>()
            .len(),
        3,
        "{sent:?}"
    );
    assert!(sent.contains(&"whitelist list".to_owned()), "{sent:?}");
    assert!(
        sent.contains(&"whitelist add Holder".to_owned()),
        "{sent:?}"
    );
    assert!(
        sent.contains(&"whitelist remove Leaver".to_owned()),
        "{sent:?}"
    );
    assert_eq!(
        (report["added"].as_u64(), report["removed"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(report["unmanaged"], 1, "{report}");
    assert!(
        w.rcon.is_whitelisted("Operator"),
        "an unmanaged name was touched"
    );
    assert_eq!(
        causes(&w.app, "minecraft.whitelist_add", "Holder").await,
        ["reconcile"]
    );
    assert_eq!(
        causes(&w.app, "minecraft.whitelist_remove", "Leaver").await,
        ["reconcile"]
    );

    // The API shows the last reconciliation and its result.
    let body = links_of(&w).await;
    assert_eq!(body["last_reconciliation"]["outcome"], "ok", "{body}");
    assert_eq!(body["last_reconciliation"]["result"]["added"], 1, "{body}");

    // A second run finds nothing to do: one `whitelist list`, nothing else.
    let before = w.rcon.commands().len();
    let (_, report) = w.reconcile().await;
    assert_eq!(
        w.rcon.commands()[before..],
        ["whitelist list".to_owned()],
        "{report}"
    );
}

#[actix_web::test]
async fn a_server_that_was_down_is_reconciled_by_itself_when_it_comes_back() {
    let mut w = world(Clock::System).await;
    seed(&w.app, 1, "Holder", vec![ROLE as i64], false).await;
    w.rcon.refuse();
    let (status, body) = w.reconcile().await;
    assert_eq!(status, 503, "{body}");
    let links = links_of(&w).await;
    assert_eq!(links["last_reconciliation"]["outcome"], "failed", "{links}");
    assert!(!w.rcon.is_whitelisted("Holder"));

    // Nobody asks again: the server's recovery triggers the round.
    w.rcon.come_back();
    assert!(
        eventually(Duration::from_secs(20), || async {
            w.rcon.is_whitelisted("Holder")
        })
        .await,
        "not reconciled after the server came back: {:?}",
        w.rcon.commands()
    );
    assert!(
        eventually(WAIT, || async {
            links_of(&w).await["last_reconciliation"]["outcome"] == "ok"
        })
        .await
    );
}

#[actix_web::test]
async fn a_reconciliation_round_is_claimed_by_exactly_one_caller() {
    let w = world(Clock::System).await;
    let store = &w.app.state.store;
    links::ensure_sync(store, "claimed", 1_000).await.unwrap();
    let (a, b) = tokio::join!(
        links::claim_sync(store, "claimed", 1_000, 2_000, "instance-a"),
        links::claim_sync(store, "claimed", 1_000, 2_000, "instance-b"),
    );
    assert_eq!(
        [a.unwrap(), b.unwrap()].iter().filter(|c| **c).count(),
        1,
        "both or neither claimed the round"
    );
}
