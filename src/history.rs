//! The last 24 hours, one sample a minute, kept in this process so the overview's charts work
//! without Prometheus: commands per minute, gateway latency, players online per server and HTTP
//! errors per minute. A sampler reads the application's own metrics once a minute (nothing is
//! added to any hot path); counters become per-minute increments, gauges their value then.
//! Memory is fixed: one ring of 1,440 slots per series.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::Clock;
use crate::metrics::Metrics;

pub const MINUTES: usize = 24 * 60;
const MINUTE_MS: i64 = 60_000;
/// Players are charted for this many servers at most (a misconfiguration cannot grow memory).
const MAX_SERVERS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Series {
    /// Slash commands handled (all outcomes).
    Commands,
    /// Highest shard heartbeat latency, milliseconds.
    GatewayLatencyMs,
    /// Players online on one Minecraft server.
    Players(String),
    /// Responses with a 5xx status.
    HttpServerErrors,
    /// Responses with a 4xx status.
    HttpClientErrors,
}

/// What the metrics say at one instant: counters as running totals, gauges as values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub commands_total: u64,
    pub gateway_latency_ms: Option<f64>,
    pub players: BTreeMap<String, f64>,
    pub http_server_errors_total: u64,
    pub http_client_errors_total: u64,
}

impl Reading {
    /// Reads the registry the way `/metrics` would.
    pub fn of(metrics: &Metrics) -> Self {
        let mut reading = Reading::default();
        for family in metrics.registry.gather() {
            let name = family.name();
            for metric in family.get_metric() {
                let label = |wanted: &str| {
                    metric
                        .get_label()
                        .iter()
                        .find(|l| l.name() == wanted)
                        .map(|l| l.value().to_owned())
                };
                match name {
                    "guildhall_discord_commands_total" => {
                        reading.commands_total += metric.get_counter().value() as u64;
                    }
                    "guildhall_discord_shard_latency_seconds" => {
                        let ms = metric.get_gauge().value() * 1000.0;
                        reading.gateway_latency_ms =
                            Some(reading.gateway_latency_ms.map_or(ms, |m| m.max(ms)));
                    }
                    "guildhall_minecraft_players_online" => {
                        if let Some(server) = label("server") {
                            reading.players.insert(server, metric.get_gauge().value());
                        }
                    }
                    "guildhall_http_requests_total" => {
                        let count = metric.get_counter().value() as u64;
                        match label("status").and_then(|s| s.parse::<u16>().ok()) {
                            Some(500..=599) => reading.http_server_errors_total += count,
                            Some(400..=499) => reading.http_client_errors_total += count,
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
        }
        reading
    }
}

/// One series: slot `minute % MINUTES` holds the value of that minute, if it is that minute's.
struct Ring {
    slots: Box<[(i64, f64)]>,
}

impl Ring {
    fn new() -> Self {
        Self {
            slots: vec![(i64::MIN, 0.0); MINUTES].into_boxed_slice(),
        }
    }

    fn put(&mut self, minute: i64, value: f64) {
        self.slots[minute.rem_euclid(MINUTES as i64) as usize] = (minute, value);
    }

    fn get(&self, minute: i64) -> Option<f64> {
        let (at, value) = self.slots[minute.rem_euclid(MINUTES as i64) as usize];
        (at == minute).then_some(value)
    }
}

#[derive(Default)]
struct Inner {
    rings: BTreeMap<Series, Ring>,
    /// Counter totals at the previous reading, to turn totals into per-minute increments.
    last: Option<Reading>,
}

/// The rings, shared by the sampler and the pages.
#[derive(Clone)]
pub struct History {
    inner: Arc<Mutex<Inner>>,
    clock: Clock,
}

fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(MINUTE_MS)
}

/// The increment of a counter since the last reading; a total that went down (the process's
/// counters never do, but a restarted exporter might) counts from zero.
fn increment(now: u64, before: Option<u64>) -> Option<f64> {
    let before = before?;
    Some(if now >= before { now - before } else { now } as f64)
}

impl History {
    pub fn new(clock: Clock) -> Self {
        Self {
            inner: Arc::default(),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one reading as the current minute's sample. The first reading only sets the
    /// counters' baseline (an increment needs two readings).
    pub fn record(&self, reading: Reading) {
        let minute = minute_of(self.clock.now_ms());
        let mut inner = self.lock();
        let last = inner.last.take();
        let mut put = |series: Series, value: Option<f64>| {
            if let Some(value) = value {
                inner
                    .rings
                    .entry(series)
                    .or_insert_with(Ring::new)
                    .put(minute, value);
            }
        };
        put(
            Series::Commands,
            increment(
                reading.commands_total,
                last.as_ref().map(|l| l.commands_total),
            ),
        );
        put(
            Series::HttpServerErrors,
            increment(
                reading.http_server_errors_total,
                last.as_ref().map(|l| l.http_server_errors_total),
            ),
        );
        put(
            Series::HttpClientErrors,
            increment(
                reading.http_client_errors_total,
                last.as_ref().map(|l| l.http_client_errors_total),
            ),
        );
        put(Series::GatewayLatencyMs, reading.gateway_latency_ms);
        for (server, players) in reading.players.iter().take(MAX_SERVERS) {
            put(Series::Players(server.clone()), Some(*players));
        }
        inner.last = Some(reading);
    }

    /// The last 24 hours of one series, oldest first, one entry a minute (the current minute
    /// last); `None` where no sample was taken.
    pub fn series(&self, series: &Series) -> Vec<Option<f64>> {
        let now = minute_of(self.clock.now_ms());
        let inner = self.lock();
        let ring = inner.rings.get(series);
        (now - MINUTES as i64 + 1..=now)
            .map(|minute| ring.and_then(|r| r.get(minute)))
            .collect()
    }

    /// The series that have at least one sample (players appear per server).
    pub fn known(&self) -> Vec<Series> {
        self.lock().rings.keys().cloned().collect()
    }

    /// Samples the metrics once a minute, on the actix runtime, for the process's lifetime.
    pub fn start_sampling(&self, metrics: Metrics) {
        let history = self.clone();
        actix_web::rt::spawn(async move {
            let mut tick = actix_web::rt::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                history.record(Reading::of(&metrics));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    trait AdvanceMinutes {
        fn advance_minutes(&self, n: u64);
    }

    impl AdvanceMinutes for ManualClock {
        fn advance_minutes(&self, n: u64) {
            self.advance(Duration::from_secs(60 * n));
        }
    }

    fn history() -> (History, ManualClock) {
        // Mid-minute, so a minute's readings never straddle a boundary.
        let clock = ManualClock::at(1_700_000_000_000 + 30_000);
        (History::new(clock.clone().into()), clock)
    }

    fn reading(commands: u64, latency: Option<f64>, players: &[(&str, f64)]) -> Reading {
        Reading {
            commands_total: commands,
            gateway_latency_ms: latency,
            players: players.iter().map(|(s, p)| ((*s).to_owned(), *p)).collect(),
            http_server_errors_total: commands / 10,
            http_client_errors_total: 0,
        }
    }

    #[test]
    fn counters_become_per_minute_increments_and_gauges_their_value() {
        let (history, clock) = history();
        history.record(reading(100, Some(40.0), &[("survival", 3.0)]));
        clock.advance_minutes(1);
        history.record(reading(130, Some(55.0), &[("survival", 5.0)]));
        clock.advance_minutes(1);
        history.record(reading(130, None, &[("survival", 4.0), ("creative", 1.0)]));

        let commands = history.series(&Series::Commands);
        assert_eq!(commands.len(), MINUTES);
        // The first reading only sets the baseline.
        assert_eq!(&commands[MINUTES - 3..], &[None, Some(30.0), Some(0.0)]);
        let latency = history.series(&Series::GatewayLatencyMs);
        assert_eq!(&latency[MINUTES - 3..], &[Some(40.0), Some(55.0), None]);
        let survival = history.series(&Series::Players("survival".into()));
        assert_eq!(&survival[MINUTES - 3..], &[Some(3.0), Some(5.0), Some(4.0)]);
        let creative = history.series(&Series::Players("creative".into()));
        assert_eq!(&creative[MINUTES - 2..], &[None, Some(1.0)]);
        let errors = history.series(&Series::HttpServerErrors);
        assert_eq!(&errors[MINUTES - 2..], &[Some(3.0), Some(0.0)]);
    }

    #[test]
    fn samples_older_than_a_day_are_gone_and_memory_stays_one_ring_per_series() {
        let (history, clock) = history();
        history.record(reading(0, Some(10.0), &[]));
        clock.advance_minutes(1);
        history.record(reading(5, Some(11.0), &[]));
        assert_eq!(history.series(&Series::Commands)[MINUTES - 1], Some(5.0));
        // A day later the same slots are reused; what they held is not reported as today's.
        clock.advance_minutes(MINUTES as u64);
        let commands = history.series(&Series::Commands);
        assert!(commands.iter().all(Option::is_none), "{commands:?}");
        history.record(reading(7, Some(12.0), &[]));
        let latency = history.series(&Series::GatewayLatencyMs);
        assert_eq!(latency.iter().flatten().count(), 1);
        assert_eq!(latency[MINUTES - 1], Some(12.0));
        assert_eq!(history.known().len(), 4);
    }

    #[test]
    fn a_counter_that_goes_down_counts_from_zero_not_negative() {
        let (history, clock) = history();
        history.record(reading(50, None, &[]));
        clock.advance_minutes(1);
        history.record(reading(8, None, &[]));
        assert_eq!(history.series(&Series::Commands)[MINUTES - 1], Some(8.0));
    }

    #[test]
    fn a_reading_of_the_real_registry_sees_commands_latency_and_players() {
        let metrics = Metrics::new(prometheus::Registry::new()).unwrap();
        metrics
            .discord_commands
            .with_label_values(&["ping", "ok"])
            .inc_by(3);
        metrics
            .discord_commands
            .with_label_values(&["kick", "error"])
            .inc();
        metrics
            .minecraft_players_online
            .with_label_values(&["survival"])
            .set(7);
        let reading = Reading::of(&metrics);
        assert_eq!(reading.commands_total, 4);
        assert_eq!(reading.players.get("survival"), Some(&7.0));
    }
}
