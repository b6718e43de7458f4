//! The bench report: one row per measured scenario, as a text table or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::harness::LoadResult;
use crate::rss::Rss;

#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub scenario: String,
    pub calls: u64,
    pub seconds: f64,
    pub calls_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub errors: BTreeMap<String, u64>,
    /// This row's calls/s divided by the baseline's, measured in the same run.
    pub ratio_calls_per_second: Option<f64>,
    /// This row's p99 divided by the baseline's.
    pub ratio_p99: Option<f64>,
    /// Resident memory of the server process right after the measured period.
    pub server_rss: Option<Rss>,
}

impl ReportRow {
    pub fn new(scenario: &str, result: &LoadResult, server_rss: Option<Rss>) -> Self {
        let millis = |quantile: f64| result.stats.quantile(quantile).as_secs_f64() * 1e3;
        Self {
            scenario: scenario.to_owned(),
            calls: result.stats.ok_count(),
            seconds: result.elapsed.as_secs_f64(),
            calls_per_second: result.calls_per_second(),
            p50_ms: millis(0.50),
            p90_ms: millis(0.90),
            p99_ms: millis(0.99),
            p999_ms: millis(0.999),
            errors: result.stats.errors().clone(),
            ratio_calls_per_second: None,
            ratio_p99: None,
            server_rss,
        }
    }

    /// Fills in the ratios against `baseline`.
    pub fn compare_to(&mut self, baseline: &ReportRow) {
        if baseline.calls_per_second > 0.0 {
            self.ratio_calls_per_second = Some(self.calls_per_second / baseline.calls_per_second);
        }
        if baseline.p99_ms > 0.0 {
            self.ratio_p99 = Some(self.p99_ms / baseline.p99_ms);
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub cores: usize,
    pub concurrency: usize,
    pub connections: usize,
    pub target: String,
    /// Process of the echo baseline server: `in-process` or `own-process`.
    pub baseline: String,
    pub rows: Vec<ReportRow>,
    /// For `login`: what bcrypt alone allows on this machine, measured in the same run.
    pub login_bound: Option<LoginBound>,
}

/// The login ceiling: every core hashing bcrypt without pause.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LoginBound {
    pub bcrypt_cost: u32,
    /// Mean time of one hash at `bcrypt_cost`, in milliseconds.
    pub hash_ms: f64,
    /// `cores / hash time`, in logins per second.
    pub logins_per_second: f64,
    /// The login row's calls/s divided by `logins_per_second`.
    pub ratio: f64,
    /// Hashes per second with every core hashing at once, measured in the same run.
    pub parallel_hashes_per_second: f64,
    /// The login row's calls/s divided by `parallel_hashes_per_second`.
    pub parallel_ratio: f64,
}

impl BenchReport {
    /// Renders the rows as an aligned text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} cores, {} concurrent clients over {} connections, target {}, baseline {}",
            self.cores, self.concurrency, self.connections, self.target, self.baseline
        );
        let _ = writeln!(
            out,
            "{:<10} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}  errors",
            "scenario",
            "ok calls",
            "calls/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "× calls",
            "× p99",
            "RSS MiB",
            "peak MiB"
        );
        for row in &self.rows {
            let ratio = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.2}"));
            let rss = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.1}"));
            let errors = if row.errors.is_empty() {
                "none".to_owned()
            } else {
                row.errors
                    .iter()
                    .map(|(code, count)| format!("{code}={count}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = writeln!(
                out,
                "{:<10} {:>9} {:>10} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>8} {:>9} {:>9}  {}",
                row.scenario,
                row.calls,
                format_rate(row.calls_per_second),
                row.p50_ms,
                row.p90_ms,
                row.p99_ms,
                row.p999_ms,
                ratio(row.ratio_calls_per_second),
                ratio(row.ratio_p99),
                rss(row.server_rss.map(|r| r.current_mib())),
                rss(row.server_rss.map(|r| r.peak_mib())),
                errors
            );
        }
        if let Some(bound) = &self.login_bound {
            let _ = writeln!(
                out,
                "login bound: one bcrypt-{} hash takes {:.1} ms, so {} cores allow {:.2} logins/s; \
                 measured {:.2} of that",
                bound.bcrypt_cost, bound.hash_ms, self.cores, bound.logins_per_second, bound.ratio
            );
            let _ = writeln!(
                out,
                "             {} threads hashing at once reached {:.2} hashes/s; measured {:.2} of that",
                self.cores, bound.parallel_hashes_per_second, bound.parallel_ratio
            );
            let _ = writeln!(
                out,
                "             (cost {} is auth.bcrypt_cost of this process's configuration, \
                 which may differ from the server's)",
                bound.bcrypt_cost
            );
        }
        out
    }

    /// Builds one line naming the failed calls of each row, or `None` when every call succeeded.
    pub fn failure_summary(&self) -> Option<String> {
        let failures: Vec<String> = self
            .rows
            .iter()
            .filter(|row| !row.errors.is_empty())
            .map(|row| {
                let counts: Vec<String> = row
                    .errors
                    .iter()
                    .map(|(code, count)| format!("{code}={count}"))
                    .collect();
                format!("{} {}", row.scenario, counts.join(" "))
            })
            .collect();
        if failures.is_empty() {
            return None;
        }
        Some(format!(
            "calls failed during the measured period ({}); `ok calls` and `calls/s` count only \
             the successful ones",
            failures.join(", ")
        ))
    }
}

/// Formats a rate of calls per second: one decimal below 100/s, where a rounded integer
/// would hide most of the value (login runs at a few calls per second), none above.
fn format_rate(calls_per_second: f64) -> String {
    if calls_per_second < 100.0 {
        format!("{calls_per_second:.1}")
    } else {
        format!("{calls_per_second:.0}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::CallStats;

    fn result(calls: u64, millis: u64) -> LoadResult {
        let mut stats = CallStats::new();
        for _ in 0..calls {
            stats.record_ok(Duration::from_millis(millis));
        }
        LoadResult {
            stats,
            elapsed: Duration::from_secs(1),
        }
    }

    #[test]
    fn ratios_against_baseline() {
        let baseline = ReportRow::new("echo", &result(1_000, 2), None);
        let mut row = ReportRow::new("get-user", &result(900, 3), None);
        row.compare_to(&baseline);
        let calls_ratio = row.ratio_calls_per_second.unwrap();
        let p99_ratio = row.ratio_p99.unwrap();
        assert!(
            (calls_ratio - 0.9).abs() < 1e-9,
            "calls ratio {calls_ratio}"
        );
        assert!((p99_ratio - 1.5).abs() < 0.01, "p99 ratio {p99_ratio}");
    }

    #[test]
    fn table_lists_errors() {
        let mut failing = result(10, 1);
        failing.stats.record_error(tonic::Code::Unavailable);
        let report = BenchReport {
            cores: 2,
            concurrency: 4,
            connections: 1,
            target: "in-process".to_owned(),
            baseline: "in-process".to_owned(),
            rows: vec![ReportRow::new("echo", &failing, None)],
            login_bound: None,
        };
        let table = report.table();
        assert!(table.contains("UNAVAILABLE=1"), "{table}");
        assert!(table.lines().count() == 3, "{table}");
    }

    #[test]
    fn slow_rates_keep_one_decimal() {
        assert_eq!(format_rate(4.26), "4.3");
        assert_eq!(format_rate(0.0), "0.0");
        assert_eq!(format_rate(99.94), "99.9");
        assert_eq!(format_rate(100.0), "100");
        assert_eq!(format_rate(42_715.4), "42715");
    }

    fn report(rows: Vec<ReportRow>) -> BenchReport {
        BenchReport {
            cores: 2,
            concurrency: 4,
            connections: 1,
            target: "in-process".to_owned(),
            baseline: "in-process".to_owned(),
            rows,
            login_bound: None,
        }
    }

    #[test]
    fn failure_summary_names_error_counts() {
        let mut failing = result(10, 1);
        failing.stats.record_error(tonic::Code::Unavailable);
        failing.stats.record_error(tonic::Code::Unavailable);
        failing.stats.record_error(tonic::Code::DeadlineExceeded);
        let summary = report(vec![
            ReportRow::new("echo", &result(10, 1), None),
            ReportRow::new("login", &failing, None),
        ])
        .failure_summary()
        .unwrap();
        assert!(
            summary.contains("(login DEADLINE_EXCEEDED=1 UNAVAILABLE=2)"),
            "{summary}"
        );
        assert!(!summary.contains("echo"), "{summary}");
    }

    #[test]
    fn failure_summary_is_none_without_errors() {
        let rows = vec![ReportRow::new("echo", &result(10, 1), None)];
        assert_eq!(report(rows).failure_summary(), None);
    }
}
