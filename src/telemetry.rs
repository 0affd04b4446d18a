//! The tracing subscriber: pretty on a terminal, JSON with `LOG_FORMAT=json`, filtered by
//! `RUST_LOG`, plus a layer that feeds every line to the LogBroadcaster for live viewers.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::{Arc, RwLock};

use actix::Recipient;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::actors::broadcaster::{LogLine, PublishLog};
use crate::config::LogFormat;
use crate::ids::now_ms;

/// Where the broadcast layer sends lines. Empty until the broadcaster starts; lines logged
/// before that reach the terminal only.
#[derive(Clone, Default)]
pub struct LogSink {
    target: Arc<RwLock<Option<Recipient<PublishLog>>>>,
}

impl LogSink {
    pub fn attach(&self, recipient: Recipient<PublishLog>) {
        if let Ok(mut slot) = self.target.write() {
            *slot = Some(recipient);
        }
    }

    fn send(&self, line: LogLine) {
        if let Ok(slot) = self.target.read()
            && let Some(recipient) = slot.as_ref()
        {
            // Never block or recurse from inside logging: a full mailbox drops the line.
            let _ = recipient.try_send(PublishLog(line));
        }
    }
}

/// The process-wide sink, so that whichever application instance starts attaches to it.
pub fn global_sink() -> &'static LogSink {
    static SINK: std::sync::OnceLock<LogSink> = std::sync::OnceLock::new();
    SINK.get_or_init(LogSink::default)
}

/// Installs the global subscriber. Safe to call twice (tests): the second call does nothing.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let broadcast = BroadcastLayer::new(global_sink().clone());
    let registry = tracing_subscriber::registry().with(filter).with(broadcast);
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    // An already-installed subscriber (a second app in one test process) is fine.
    let _ = result;
}

/// Request id recorded on a span, found again for every event inside it.
struct RequestIdExt(String);

/// The layer that turns every event into a `LogLine` for the broadcaster.
pub struct BroadcastLayer {
    sink: LogSink,
}

impl BroadcastLayer {
    pub fn new(sink: LogSink) -> Self {
        Self { sink }
    }
}

impl<S> Layer<S> for BroadcastLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut visitor = RequestIdVisitor(None);
        attrs.record(&mut visitor);
        if let (Some(request_id), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().insert(RequestIdExt(request_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let request_id = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<RequestIdExt>().map(|r| r.0.clone()))
        });
        let meta = event.metadata();
        self.sink.send(LogLine {
            timestamp_ms: now_ms(),
            level: meta.level().to_string(),
            target: meta.target().to_owned(),
            message: visitor.finish(),
            request_id,
        });
    }
}

struct RequestIdVisitor(Option<String>);

impl Visit for RequestIdVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "request_id" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "request_id" {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_owned());
        }
    }
}

/// Renders `message key=value …` like the pretty formatter does.
#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl MessageVisitor {
    fn finish(self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.fields,
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={:?}", field.name(), value);
        }
    }
}
