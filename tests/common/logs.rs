//! Captures guildhall's log events (INFO and above) process-wide, with the request id of the
//! span each happened in, so a test can count the lines one request wrote. The HTTP workers run
//! on threads of their own, hence a global subscriber, installed once; each test tells its own
//! lines apart by request id (or by a name only it uses).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Lines kept; the oldest go first (every test reads its lines right after writing them).
const KEEP: usize = 50_000;

#[derive(Debug, Clone)]
pub struct Line {
    pub level: Level,
    pub message: String,
    pub request_id: Option<String>,
    pub fields: BTreeMap<String, String>,
}

impl Line {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Clone)]
pub struct Captured {
    lines: Arc<Mutex<Vec<Line>>>,
}

impl Captured {
    pub fn lines(&self) -> Vec<Line> {
        self.lines.lock().unwrap().clone()
    }

    /// The lines written inside the request with this id.
    pub fn of_request(&self, request_id: &str) -> Vec<Line> {
        self.lines()
            .into_iter()
            .filter(|l| l.request_id.as_deref() == Some(request_id))
            .collect()
    }
}

/// Installs the capturing subscriber (once per test process) and returns its lines.
pub fn capture() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured {
                lines: Arc::new(Mutex::new(Vec::new())),
            };
            let layer = CaptureLayer(captured.lines.clone());
            let filter = Targets::new().with_target("guildhall", Level::INFO);
            let _ = tracing_subscriber::registry()
                .with(layer.with_filter(filter))
                .try_init();
            captured
        })
        .clone()
}

struct CaptureLayer(Arc<Mutex<Vec<Line>>>);

struct RequestId(String);

impl<S> Layer<S> for CaptureLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(request_id), Some(span)) = (fields.0.remove("request_id"), ctx.span(id)) {
            span.extensions_mut().insert(RequestId(request_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let request_id = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<RequestId>().map(|r| r.0.clone()))
        });
        let message = fields.0.remove("message").unwrap_or_default();
        let mut lines = self.0.lock().unwrap();
        if lines.len() >= KEEP {
            lines.drain(..KEEP / 2);
        }
        lines.push(Line {
            level: *event.metadata().level(),
            message,
            request_id,
            fields: fields.0,
        });
    }
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
}
