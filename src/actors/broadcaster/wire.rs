//! What viewers receive, serialised once per line or event by the broadcaster and shared by
//! every viewer (a `ByteString` clone is a reference count). Every frame is one JSON object with
//! a `type`:
//! - `line`: `{"type":"line","seq":12,"instance":"host-1a2b3c","timestamp_ms":…,"level":"INFO",
//!   "target":"…","message":"…","request_id":"…"}`; `seq` counts the lines of one instance.
//! - `status`: `{"type":"status","instance":"…","component":"gateway","status":{…}}`.
//! - `missed`: `{"type":"missed","count":N}`: the viewer fell behind and N lines were skipped;
//!   what follows are the newest lines.
//! - `filter` / `error`: the answers to a viewer's filter message (see `web::ws`).

use std::sync::Arc;

use bytestring::ByteString;
use serde::{Deserialize, Serialize};

use super::{LogLine, StatusEvent};

/// Severity, ordered so that a filter is "this level or more severe".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// Case-insensitive: `"WARN"`, `"warn"`, `"warning"`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "trace" => Some(Level::Trace),
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// A line or status event as the broadcaster keeps it: the value (for in-process subscribers,
/// filters and the ring) and its serialised frame.
#[derive(Debug)]
pub struct Entry {
    pub seq: u64,
    pub instance: Arc<str>,
    pub body: Body,
    pub frame: ByteString,
}

#[derive(Debug)]
pub enum Body {
    Line {
        line: Arc<LogLine>,
        level: Option<Level>,
        /// Message and target, lowercased once, for viewers' search strings.
        haystack: Box<str>,
    },
    Status(Arc<StatusEvent>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Out<'a> {
    Line {
        seq: u64,
        instance: &'a str,
        #[serde(flatten)]
        line: &'a LogLine,
    },
    Status {
        instance: &'a str,
        #[serde(flatten)]
        event: &'a StatusEvent,
    },
    Missed {
        count: u64,
    },
}

/// How frames travel between instances (and back into an `Entry` on the receiving side).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum In {
    Line {
        seq: u64,
        instance: String,
        timestamp_ms: i64,
        level: String,
        target: String,
        message: String,
        #[serde(default)]
        request_id: Option<String>,
    },
    Status {
        instance: String,
        component: String,
        status: serde_json::Value,
    },
}

fn to_frame(out: &Out<'_>) -> ByteString {
    // Serialising these types cannot fail (string keys, no maps with non-string keys).
    ByteString::from(serde_json::to_string(out).unwrap_or_default())
}

fn haystack(line: &LogLine) -> Box<str> {
    let mut text = String::with_capacity(line.message.len() + line.target.len() + 1);
    text.push_str(&line.message);
    text.push('\n');
    text.push_str(&line.target);
    text.to_lowercase().into_boxed_str()
}

impl Entry {
    pub fn line(seq: u64, instance: Arc<str>, line: Arc<LogLine>) -> Self {
        let frame = to_frame(&Out::Line {
            seq,
            instance: &instance,
            line: &line,
        });
        Self::assemble(seq, instance, line, frame)
    }

    fn assemble(seq: u64, instance: Arc<str>, line: Arc<LogLine>, frame: ByteString) -> Self {
        Entry {
            seq,
            body: Body::Line {
                level: Level::parse(&line.level),
                haystack: haystack(&line),
                line,
            },
            instance,
            frame,
        }
    }

    pub fn status(instance: Arc<str>, event: Arc<StatusEvent>) -> Self {
        let frame = to_frame(&Out::Status {
            instance: &instance,
            event: &event,
        });
        Entry {
            seq: 0,
            instance,
            body: Body::Status(event),
            frame,
        }
    }

    /// A frame received from another instance; its text is kept as it came (already the wire
    /// form), so nothing is serialised again.
    pub fn decode(text: &str) -> Option<Self> {
        let frame = ByteString::from(text.to_owned());
        match serde_json::from_str::<In>(text).ok()? {
            In::Line {
                seq,
                instance,
                timestamp_ms,
                level,
                target,
                message,
                request_id,
            } => {
                let line = Arc::new(LogLine {
                    timestamp_ms,
                    level,
                    target,
                    message,
                    request_id,
                });
                Some(Self::assemble(seq, instance.into(), line, frame))
            }
            In::Status {
                instance,
                component,
                status,
            } => Some(Entry {
                seq: 0,
                instance: instance.into(),
                body: Body::Status(Arc::new(StatusEvent { component, status })),
                frame,
            }),
        }
    }

    pub fn is_line(&self) -> bool {
        matches!(self.body, Body::Line { .. })
    }
}

pub fn missed(count: u64) -> ByteString {
    to_frame(&Out::Missed { count })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> Arc<LogLine> {
        Arc::new(LogLine {
            timestamp_ms: 1_700_000_000_123,
            level: "WARN".into(),
            target: "guildhall::web".into(),
            message: "Slow \"request\"\nsecond line".into(),
            request_id: Some("req-1".into()),
        })
    }

    #[test]
    fn a_line_frame_carries_type_sequence_instance_and_the_line() {
        let entry = Entry::line(7, "host-a".into(), line());
        let json: serde_json::Value = serde_json::from_str(&entry.frame).unwrap();
        assert_eq!(json["type"], "line");
        assert_eq!(json["seq"], 7);
        assert_eq!(json["instance"], "host-a");
        assert_eq!(json["timestamp_ms"], 1_700_000_000_123i64);
        assert_eq!(json["level"], "WARN");
        assert_eq!(json["message"], "Slow \"request\"\nsecond line");
        assert_eq!(json["request_id"], "req-1");
        assert!(!entry.frame.contains('\n'), "one frame is one text line");
    }

    #[test]
    fn frames_decode_back_to_the_same_entry_keeping_their_text() {
        let entry = Entry::line(9, "host-b".into(), line());
        let back = Entry::decode(&entry.frame).unwrap();
        assert_eq!(back.seq, 9);
        assert_eq!(&*back.instance, "host-b");
        assert_eq!(back.frame, entry.frame);
        match back.body {
            Body::Line {
                line: l,
                level,
                haystack,
            } => {
                assert_eq!(*l, *line());
                assert_eq!(level, Some(Level::Warn));
                assert!(haystack.contains("slow \"request\""));
                assert!(haystack.contains("guildhall::web"));
            }
            Body::Status(_) => panic!("a line"),
        }
        let status = Entry::status(
            "host-c".into(),
            Arc::new(StatusEvent {
                component: "gateway".into(),
                status: serde_json::json!({"status": "connected"}),
            }),
        );
        let json: serde_json::Value = serde_json::from_str(&status.frame).unwrap();
        assert_eq!(json["type"], "status");
        assert_eq!(json["component"], "gateway");
        assert!(matches!(
            Entry::decode(&status.frame).unwrap().body,
            Body::Status(_)
        ));
        for garbage in [
            "",
            "{}",
            "[1]",
            r#"{"type":"missed","count":1}"#,
            "not json",
        ] {
            assert!(Entry::decode(garbage).is_none(), "{garbage}");
        }
    }

    #[test]
    fn levels_order_by_severity_and_parse_case_insensitively() {
        assert!(Level::Error > Level::Warn && Level::Warn > Level::Info);
        assert!(Level::Info > Level::Debug && Level::Debug > Level::Trace);
        assert_eq!(Level::parse("warning"), Some(Level::Warn));
        assert_eq!(Level::parse("ERROR"), Some(Level::Error));
        assert_eq!(Level::parse("loud"), None);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&missed(3)).unwrap(),
            serde_json::json!({"type": "missed", "count": 3})
        );
    }
}
