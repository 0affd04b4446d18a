//! Instants as pages show them: stored as Unix milliseconds, shown in UTC (the server cannot
//! know the reader's zone without script; the `datetime` attribute carries the exact instant).

use chrono::DateTime;

/// `2026-11-30T05:20:14Z`, for `<time datetime>`.
pub fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// `2026-11-30 05:20:14 UTC`, for reading.
pub fn short(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn instants_are_shown_in_utc() {
        assert_eq!(super::iso(1_796_016_014_000), "2026-11-30T05:20:14Z");
        assert_eq!(super::short(1_796_016_014_000), "2026-11-30 05:20:14 UTC");
    }
}
