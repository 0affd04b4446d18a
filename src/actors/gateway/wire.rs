//! One gateway connection on the wire: opening the WebSocket, the frames guildhall sends
//! (IDENTIFY, RESUME, heartbeat, close) and reading Discord's frames as serenity's model types.
//!
//! Why not serenity's `Shard`: in serenity 0.12.5 its only ways to read a frame or close the
//! socket (`WsClient::recv_json`, `close`, `next`) are crate-private, so a runner outside serenity
//! cannot drive it. The protocol is small (four frames out, six in); the event payloads are still
//! parsed by serenity's `GatewayEvent`, so the bot sees the same model types as before.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use serenity::model::event::GatewayEvent;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Gateway API version, as serenity 0.12.5 speaks it.
const API_VERSION: u8 = 10;
/// A close frame sent to a connection we give up on is not waited for longer than this.
const ABANDON_TIMEOUT: Duration = Duration::from_millis(200);

pub struct Connection {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What one read from the socket gave.
pub enum Incoming {
    Event(Box<GatewayEvent>),
    /// A frame serenity's model could not parse: skipped, its sequence number kept.
    Unparsed {
        seq: Option<u64>,
        error: String,
    },
    /// Discord closed the connection with this code (`None`: without a close frame).
    Closed(Option<u16>),
    /// The connection broke (reset, protocol error).
    Broken(String),
    /// Pings, pongs, binary frames: nothing for the shard.
    Nothing,
}

/// What a close code from Discord means for the shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseMeaning {
    /// Reconnect and RESUME the session.
    Resume,
    /// The session is gone (invalid sequence, timed out): reconnect and IDENTIFY.
    Reidentify,
    /// Retrying cannot help until the configuration changes.
    Fatal(String),
}

/// The first frames of a read that failed to parse as a whole: enough to keep the sequence.
#[derive(Deserialize)]
struct Envelope {
    s: Option<u64>,
}

impl Connection {
    /// Opens the WebSocket at `base` (a `wss://` or, in tests, `ws://` URL from Discord).
    pub async fn open(base: &str) -> Result<Self, String> {
        let mut url = url::Url::parse(base).map_err(|e| format!("bad gateway URL {base}: {e}"))?;
        url.set_query(Some(&format!("v={API_VERSION}&encoding=json")));
        let config = WebSocketConfig {
            // GUILD_CREATE of a large guild exceeds tungstenite's default limits.
            max_message_size: None,
            max_frame_size: None,
            ..WebSocketConfig::default()
        };
        let (ws, _) =
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), false)
                .await
                .map_err(|e| format!("cannot connect to the gateway: {e}"))?;
        Ok(Self { ws })
    }

    /// The next frame from Discord (cancel-safe: a frame is never half read).
    pub async fn read(&mut self) -> Incoming {
        match self.ws.next().await {
            None => Incoming::Closed(None),
            Some(Err(e)) => Incoming::Broken(e.to_string()),
            Some(Ok(Message::Text(text))) => parse(&text),
            Some(Ok(Message::Close(frame))) => Incoming::Closed(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => Incoming::Nothing,
        }
    }

    async fn send(&mut self, frame: serde_json::Value) -> Result<(), String> {
        self.ws
            .send(Message::Text(frame.to_string()))
            .await
            .map_err(|e| format!("cannot send to the gateway: {e}"))
    }

    pub async fn heartbeat(&mut self, seq: Option<u64>) -> Result<(), String> {
        self.send(json!({"op": 1, "d": seq})).await
    }

    pub async fn identify(
        &mut self,
        token: &SecretString,
        shard: [u32; 2],
        intents: u64,
    ) -> Result<(), String> {
        self.send(json!({"op": 2, "d": {
            "token": bare_token(token),
            "properties": {"os": std::env::consts::OS, "browser": "guildhall", "device": "guildhall"},
            "compress": false,
            "large_threshold": 250,
            "shard": shard,
            "intents": intents,
        }}))
        .await
    }

    pub async fn resume(
        &mut self,
        token: &SecretString,
        session_id: &str,
        seq: u64,
    ) -> Result<(), String> {
        self.send(json!({"op": 6, "d": {
            "token": bare_token(token),
            "session_id": session_id,
            "seq": seq,
        }}))
        .await
    }

    /// Closes with `code` and waits, at most `within`, for Discord's close frame in answer: a
    /// clean close (1000) ends the session on Discord's side, so the bot goes offline at once.
    pub async fn close(mut self, code: u16, within: Duration) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        };
        let closing = async {
            if self.ws.send(Message::Close(Some(frame))).await.is_err() {
                return;
            }
            // Read until Discord's close frame arrives or the connection ends.
            while let Some(Ok(message)) = self.ws.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        if tokio::time::timeout(within, closing).await.is_err() {
            tracing::debug!(code, "the gateway did not answer our close frame in time");
        }
    }

    /// Closes with a non-1000 code, so Discord keeps the session for a RESUME, without waiting
    /// long for an answer from a connection already deemed dead.
    pub async fn abandon(self) {
        self.close(4000, ABANDON_TIMEOUT).await;
    }
}

fn parse(text: &str) -> Incoming {
    match serde_json::from_str::<GatewayEvent>(text) {
        Ok(event) => Incoming::Event(Box::new(event)),
        Err(e) => Incoming::Unparsed {
            seq: serde_json::from_str::<Envelope>(text)
                .ok()
                .and_then(|f| f.s),
            error: e.to_string(),
        },
    }
}

/// Discord's gateway takes the token without the `Bot ` prefix REST uses.
fn bare_token(token: &SecretString) -> &str {
    let raw = token.expose_secret();
    raw.strip_prefix("Bot ").unwrap_or(raw)
}

/// The meaning of a close code from Discord (its gateway close-event table).
pub fn close_meaning(code: Option<u16>) -> CloseMeaning {
    match code {
        Some(4004) => CloseMeaning::Fatal(
            "Discord rejected the token (close code 4004); check DISCORD_TOKEN".into(),
        ),
        Some(4010) => CloseMeaning::Fatal(
            "Discord refused the shard range (close code 4010); check GUILDHALL_SHARDS".into(),
        ),
        Some(4011) => CloseMeaning::Fatal(
            "Discord requires more shards (close code 4011); raise the total in GUILDHALL_SHARDS"
                .into(),
        ),
        Some(4012) => {
            CloseMeaning::Fatal("Discord refused the gateway version (close code 4012)".into())
        }
        Some(4013) => CloseMeaning::Fatal(
            "Discord says the requested intents are invalid (close code 4013)".into(),
        ),
        Some(4014) => CloseMeaning::Fatal(
            "Discord refused the requested intents (close code 4014); enable the Server Members \
             intent in the developer portal or set GUILDHALL_DISCORD_MEMBERS_INTENT=false"
                .into(),
        ),
        // Invalid sequence, session timed out.
        Some(4007 | 4009) => CloseMeaning::Reidentify,
        // 4000-4003, 4005, 4008, a plain 1000/1001 from Discord, a connection without a close
        // frame: the session survives.
        _ => CloseMeaning::Resume,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_token_or_refused_intents_are_fatal() {
        for code in [4004, 4010, 4011, 4012, 4013, 4014] {
            let CloseMeaning::Fatal(reason) = close_meaning(Some(code)) else {
                panic!("{code} should be fatal");
            };
            assert!(reason.contains(&code.to_string()), "{reason}");
        }
    }

    #[test]
    fn an_expired_session_is_identified_afresh() {
        assert_eq!(close_meaning(Some(4007)), CloseMeaning::Reidentify);
        assert_eq!(close_meaning(Some(4009)), CloseMeaning::Reidentify);
    }

    #[test]
    fn other_closes_and_drops_keep_the_session_for_a_resume() {
        for code in [
            None,
            Some(1000),
            Some(1001),
            Some(1006),
            Some(4000),
            Some(4008),
        ] {
            assert_eq!(close_meaning(code), CloseMeaning::Resume, "{code:?}");
        }
    }

    #[test]
    fn the_gateway_gets_the_token_without_the_rest_prefix() {
        let prefixed = SecretString::from("Bot abc.def");
        let bare = SecretString::from("abc.def");
        assert_eq!(bare_token(&prefixed), "abc.def");
        assert_eq!(bare_token(&bare), "abc.def");
    }

    #[test]
    fn a_frame_serenity_cannot_parse_keeps_its_sequence_number() {
        let Incoming::Unparsed { seq, .. } = parse(r#"{"op":99,"s":42,"t":null,"d":null}"#) else {
            panic!("should not parse");
        };
        assert_eq!(seq, Some(42));
    }

    #[test]
    fn hello_and_heartbeat_acks_parse_as_serenity_events() {
        assert!(matches!(
            parse(r#"{"op":10,"s":null,"t":null,"d":{"heartbeat_interval":41250}}"#),
            Incoming::Event(e) if matches!(*e, GatewayEvent::Hello(41250))
        ));
        assert!(matches!(
            parse(r#"{"op":11,"s":null,"t":null,"d":null}"#),
            Incoming::Event(e) if matches!(*e, GatewayEvent::HeartbeatAck)
        ));
    }
}
