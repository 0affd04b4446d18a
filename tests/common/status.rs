//! The status events the broadcaster fans out (what `/ws/status` sessions receive), collected
//! in-process so a test can wait for a component's transition.

use std::sync::{Arc, Mutex};

use guildhall::actors::broadcaster::{Broadcast, Subscribe, Topic};
use serde_json::Value;

use super::TestApp;

/// The events seen so far, in order, as (component, its status document).
pub type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// Collects the status events it is sent into a [`Seen`].
struct StatusCollector(Seen);

impl actix::Actor for StatusCollector {
    type Context = actix::Context<Self>;
}

impl actix::Handler<Broadcast> for StatusCollector {
    type Result = ();
    fn handle(&mut self, msg: Broadcast, _: &mut Self::Context) {
        if let Broadcast::Status(event) = msg {
            self.0
                .lock()
                .unwrap()
                .push((event.component.clone(), event.status.clone()));
        }
    }
}

/// Subscribes a collector to `app`'s status topic; what it receives from now on is in the
/// returned [`Seen`].
pub async fn watch_status(app: &TestApp) -> Seen {
    use actix::Actor as _;
    let seen = Seen::default();
    let collector = StatusCollector(seen.clone()).start();
    app.state
        .broadcaster
        .send(Subscribe {
            topic: Topic::Status,
            recipient: collector.recipient(),
        })
        .await
        .unwrap();
    seen
}

/// Whether `component` was seen reporting `status`.
pub fn saw(seen: &Seen, component: &str, status: &str) -> bool {
    statuses(seen, component)
        .iter()
        .any(|s| s["status"] == status)
}

/// The status documents `component` reported so far, oldest first.
pub fn statuses(seen: &Seen, component: &str) -> Vec<Value> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(c, _)| c == component)
        .map(|(_, s)| s.clone())
        .collect()
}
