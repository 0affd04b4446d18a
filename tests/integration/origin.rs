//! Every audited action carries where it came from (`AuditOrigin`): an API request its address,
//! user agent and request id; a slash command its interaction id; both the instance.

use std::time::Duration;

use serde_json::Value;

use crate::common::fake_discord::{
    ADMIN, FakeDiscord, MEMBER, MODERATOR, Opt, payloads, standard_guild,
};
use crate::common::{TestApp, eventually, spawn_app_with};

pub const GUILD: u64 = 1_300_000_000_000_000_000;
pub const WAIT: Duration = Duration::from_secs(15);

/// The fake Discord with the standard guild, and the app connected to it with the guild known.
pub async fn connected() -> (FakeDiscord, TestApp) {
    let fake = FakeDiscord::start().await;
    fake.add_guild(standard_guild(GUILD));
    let vars = fake.env();
    let app = spawn_app_with(move |env| env.extend(vars)).await;
    assert!(
        eventually(WAIT, || async {
            app.state
                .guild_config
                .get(GUILD as i64)
                .await
                .is_ok_and(|c| c.present)
        })
        .await,
        "the bot did not see the guild"
    );
    (fake, app)
}

/// Sends a slash command and waits for its answer; returns the interaction id and the reply.
pub async fn invoke(
    fake: &FakeDiscord,
    invoker: u64,
    command: &str,
    options: Vec<Opt>,
) -> (u64, Value) {
    let (id, payload) = fake.command_interaction(GUILD, invoker, command, options);
    fake.dispatch(0, "INTERACTION_CREATE", payload);
    assert!(
        eventually(WAIT, || async { !fake.replies_to(id).is_empty() }).await,
        "no reply to /{command}"
    );
    (id, fake.replies_to(id).remove(0))
}

type Origin = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

async fn origin_of(app: &TestApp, action: &str) -> Origin {
    sqlx::query_as(
        "SELECT ip, user_agent, request_id, instance FROM audit_log WHERE action = $1 \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(action)
    .fetch_one(app.state.store.pool())
    .await
    .unwrap_or_else(|e| panic!("no {action} entry: {e}"))
}

#[actix_web::test]
async fn api_moderation_records_the_callers_address_user_agent_request_id_and_instance() {
    let (_fake, app) = connected().await;
    let admin = crate::common::auth::admin_token(&app).await;
    let response = app
        .client
        .post(app.url(&format!("/api/v1/guilds/{GUILD}/moderation/warn")))
        .bearer_auth(&admin)
        .header("User-Agent", "origin-test/1.0")
        .json(&serde_json::json!({"user_id": MEMBER.to_string(), "reason": "spam"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (ip, user_agent, stored_request_id, instance) = origin_of(&app, "moderation.warn").await;
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(user_agent.as_deref(), Some("origin-test/1.0"));
    assert!(stored_request_id.is_some());
    assert_eq!(stored_request_id, request_id);
    assert!(instance.is_some_and(|i| i.contains(':')));
}

#[actix_web::test]
async fn purge_and_case_reason_from_discord_record_their_interaction_id() {
    let (fake, app) = connected().await;
    let channel = fake
        .guild(GUILD)
        .and_then(|g| g.channels.first().map(|c| c.0))
        .unwrap_or(GUILD);
    let author = payloads::FakeMember {
        id: MEMBER,
        username: "member".into(),
        roles: vec![],
        bot: false,
    };
    fake.set_messages(
        channel,
        (1..=3)
            .map(|n| payloads::message(GUILD + 500 + n, GUILD, channel, &author, "spam"))
            .collect(),
    );
    let (purge, reply) = invoke(&fake, ADMIN, "purge", vec![Opt::int("count", 2)]).await;
    assert!(
        reply["data"]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("Deleted"),
        "{reply}"
    );
    let (_, _, request_id, instance) = origin_of(&app, "moderation.purge").await;
    assert_eq!(request_id, Some(format!("interaction:{purge}")));
    assert!(instance.is_some());

    invoke(&fake, MODERATOR, "warn", vec![Opt::user("user", MEMBER)]).await;
    let (reason, reply) = invoke(
        &fake,
        MODERATOR,
        "case",
        vec![Opt::sub(
            "reason",
            vec![
                Opt::int("number", 1),
                Opt::string("text", "spam in #general"),
            ],
        )],
    )
    .await;
    assert!(
        reply["data"]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("Updated"),
        "{reply}"
    );
    let (_, _, request_id, _) = origin_of(&app, "moderation.case_reason").await;
    assert_eq!(request_id, Some(format!("interaction:{reason}")));
}
