//! Keeps one member's events in the order Discord sent them.
//!
//! The shard runner hands every event to its own task, so a slow handler never delays the
//! next event. For GUILD_MEMBER_ADD/UPDATE/REMOVE that is not enough: each one is applied
//! against what the previous one left (the links compare the member's new roles with the
//! recorded whitelist state), so two events of the same member handled at the same time
//! could both read the old state, or run in the wrong order, and the earlier event would win
//! (a role taken away and given back left the member off the whitelist). Here each member
//! event waits until the previous event of the same member has been handled; other members'
//! events, and every other event, still run at once.

use std::collections::HashMap;
use std::future::Future;

use serenity::model::event::Event;
use tokio::sync::oneshot;

/// A guild and one of its members.
type Member = (u64, u64);

/// Per member, the signal that its latest event has been handled.
#[derive(Default)]
pub(super) struct MemberOrder {
    last: HashMap<Member, oneshot::Receiver<()>>,
}

/// An event's place in its member's line (no place for events about no one member).
pub(super) struct Turn(Option<(Option<oneshot::Receiver<()>>, oneshot::Sender<()>)>);

impl MemberOrder {
    /// The place of `event` after the previous event of the same member. Must be called in
    /// the order the events arrived.
    pub(super) fn turn(&mut self, event: &Event) -> Turn {
        self.turn_of(member_of(event))
    }

    fn turn_of(&mut self, member: Option<Member>) -> Turn {
        Turn(member.map(|member| {
            // Members whose last event is done need no entry; this keeps the map as small as
            // the number of members with an event in flight.
            self.last.retain(|_, done| {
                matches!(done.try_recv(), Err(oneshot::error::TryRecvError::Empty))
            });
            let (finished, done) = oneshot::channel();
            (self.last.insert(member, done), finished)
        }))
    }
}

impl Turn {
    /// Runs `handle` once the previous event of the member is done (a handler that panicked
    /// counts as done), then lets the next one go.
    pub(super) async fn run(self, handle: impl Future<Output = ()>) {
        let Some((previous, finished)) = self.0 else {
            return handle.await;
        };
        if let Some(previous) = previous {
            // An error only means the previous handler is gone: it is done too.
            let _ = previous.await;
        }
        handle.await;
        let _ = finished.send(());
    }
}

fn member_of(event: &Event) -> Option<Member> {
    match event {
        Event::GuildMemberAdd(e) => Some((e.member.guild_id.get(), e.member.user.id.get())),
        Event::GuildMemberUpdate(e) => Some((e.guild_id.get(), e.user.id.get())),
        Event::GuildMemberRemove(e) => Some((e.guild_id.get(), e.user.id.get())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    /// Member 1's first event is slow (it yields many times before recording itself); the
    /// second must still be recorded after it, while member 2's event is not held back.
    #[tokio::test]
    async fn one_members_events_are_handled_in_arrival_order() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut order = MemberOrder::default();
        let mut tasks = Vec::new();
        for (user, label, slow) in [
            (1, "1-first", true),
            (1, "1-second", false),
            (2, "2", false),
        ] {
            let seen = seen.clone();
            let turn = order.turn_of(Some((10, user)));
            tasks.push(tokio::spawn(turn.run(async move {
                if slow {
                    for _ in 0..50 {
                        tokio::task::yield_now().await;
                    }
                }
                seen.lock().unwrap().push(label);
            })));
        }
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .expect("every event is handled")
                .expect("no handler panics");
        }
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, ["2", "1-first", "1-second"]);
        // Members whose events are done leave no entry behind.
        let _ = order.turn_of(Some((10, 3)));
        assert_eq!(order.last.len(), 1);
    }

    /// A handler that panicked does not hold its member's later events forever.
    #[tokio::test]
    async fn a_panicked_handler_lets_the_next_event_through() {
        let mut order = MemberOrder::default();
        let first = order.turn_of(Some((10, 1)));
        let second = order.turn_of(Some((10, 1)));
        let failed = tokio::spawn(first.run(async { panic!("handler failed") })).await;
        assert!(failed.is_err());
        let (tx, rx) = oneshot::channel();
        tokio::spawn(second.run(async move {
            let _ = tx.send(());
        }));
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .expect("the next event ran")
            .expect("and finished");
    }
}
