//! Each refusal of a moderation request has its own stable code and status, so a client (the
//! dashboard, a script) can act on it; listed in docs/api.md.

use serde_json::json;

use crate::common::auth::admin_token;
use crate::common::fake_discord::{ADMIN, BOT_ID, MEMBER, OTHER_MEMBER, OWNER};
use crate::origin::{GUILD, connected};

#[actix_web::test]
async fn every_moderation_refusal_answers_its_own_code() {
    let (_fake, app) = connected().await;
    let admin = admin_token(&app).await;
    let stranger: u64 = 800_000_000_000_000_777;
    // (action, target, status, code), in order: some cases set up the next (a ban, then the
    // same ban again).
    let cases: Vec<(&str, u64, u16, &str)> = vec![
        ("kick", OWNER, 409, "cannot_moderate_owner"),
        ("kick", BOT_ID, 409, "cannot_moderate_bot"),
        ("kick", ADMIN, 409, "target_above_bot"),
        ("kick", stranger, 404, "member_not_found"),
        ("unban", OTHER_MEMBER, 409, "not_banned"),
        ("ban", MEMBER, 201, ""),
        ("ban", MEMBER, 409, "already_banned"),
        ("unban", MEMBER, 201, ""),
    ];
    for (action, target, status, code) in cases {
        let (got, body) = app
            .call(
                "POST",
                &format!("/api/v1/guilds/{GUILD}/moderation/{action}"),
                Some(&admin),
                Some(json!({"user_id": target.to_string()})),
            )
            .await;
        assert_eq!(got.as_u16(), status, "{action} {target}: {body}");
        if !code.is_empty() {
            assert_eq!(body["error"]["code"], code, "{action} {target}: {body}");
        }
    }
    let (got, body) = app
        .call(
            "POST",
            "/api/v1/guilds/42/moderation/warn",
            Some(&admin),
            Some(json!({"user_id": MEMBER.to_string()})),
        )
        .await;
    assert_eq!(
        (got.as_u16(), &body["error"]["code"]),
        (404, &json!("unknown_guild"))
    );
}
