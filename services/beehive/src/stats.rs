//! Latency histograms and outcome counts shared by `replay` and `bench`.

use std::collections::BTreeMap;
use std::time::Duration;

use beehive_runtime::observe::code_name;
use hdrhistogram::Histogram;

/// Highest latency the histograms track: one minute, in microseconds.
const MAX_TRACKED_MICROS: u64 = 60_000_000;
/// Significant decimal digits kept per recorded value.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies of successful calls plus a count of failures by gRPC code.
#[derive(Debug, Clone)]
pub struct CallStats {
    latencies: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl Default for CallStats {
    fn default() -> Self {
        Self::new()
    }
}

impl CallStats {
    pub fn new() -> Self {
        // Bounds are constants within hdrhistogram's limits, so construction cannot fail.
        let latencies = Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, SIGNIFICANT_DIGITS)
            .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"));
        Self {
            latencies,
            errors: BTreeMap::new(),
        }
    }

    pub fn record_ok(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latencies.saturating_record(micros.max(1));
    }

    pub fn record_error(&mut self, code: tonic::Code) {
        *self.errors.entry(code_name(code).to_owned()).or_default() += 1;
    }

    pub fn record(&mut self, latency: Duration, outcome: Result<(), tonic::Code>) {
        match outcome {
            Ok(()) => self.record_ok(latency),
            Err(code) => self.record_error(code),
        }
    }

    pub fn merge(&mut self, other: &CallStats) {
        // Both histograms share the same bounds, so adding cannot fail.
        let _ = self.latencies.add(&other.latencies);
        for (code, count) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += count;
        }
    }

    pub fn ok_count(&self) -> u64 {
        self.latencies.len()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn errors(&self) -> &BTreeMap<String, u64> {
        &self.errors
    }

    /// Latency at `quantile` (0.0 to 1.0) of successful calls; zero when none succeeded.
    pub fn quantile(&self, quantile: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.latencies.value_at_quantile(quantile))
    }
}

/// Formats a latency in milliseconds with two decimals.
pub fn millis(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_known_values() {
        let mut stats = CallStats::new();
        for millis in 1..=100u64 {
            stats.record_ok(Duration::from_millis(millis));
        }
        let p50 = stats.quantile(0.5).as_millis();
        let p99 = stats.quantile(0.99).as_millis();
        assert_eq!(p50, 50);
        assert_eq!(p99, 99);
        assert_eq!(stats.ok_count(), 100);
    }

    #[test]
    fn errors_count_by_code() {
        let mut stats = CallStats::new();
        stats.record(Duration::from_millis(1), Err(tonic::Code::Unavailable));
        stats.record(Duration::from_millis(1), Err(tonic::Code::Unavailable));
        stats.record(Duration::from_millis(1), Ok(()));
        assert_eq!(stats.errors().get("UNAVAILABLE"), Some(&2));
        assert_eq!(stats.error_count(), 2);
        assert_eq!(stats.ok_count(), 1);
    }

    #[test]
    fn merge_adds_both() {
        let mut left = CallStats::new();
        left.record_ok(Duration::from_millis(2));
        left.record_error(tonic::Code::Internal);
        let mut right = CallStats::new();
        right.record_ok(Duration::from_millis(4));
        right.record_error(tonic::Code::Internal);
        left.merge(&right);
        assert_eq!(left.ok_count(), 2);
        assert_eq!(left.errors().get("INTERNAL"), Some(&2));
    }

    #[test]
    fn empty_quantile_is_zero() {
        assert_eq!(CallStats::new().quantile(0.99), Duration::ZERO);
    }
}
