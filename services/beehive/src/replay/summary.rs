//! The summary printed at the end of a replay.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::run::{PhaseSummary, ReplaySummary};

/// Renders `summary` as the lines printed after the progress bars.
pub fn render(summary: &ReplaySummary) -> String {
    let mut out = String::new();
    let expected = &summary.expected;
    let _ = writeln!(
        out,
        "corpus: {} conversations, {} messages",
        expected.corpus_conversations, expected.corpus_messages
    );
    phase_line(
        &mut out,
        "users",
        &summary.users,
        expected.users,
        "registered",
        "logged in",
    );
    phase_line(
        &mut out,
        "friendships",
        &summary.friendships,
        expected.friendships,
        "created",
        "already friends",
    );
    phase_line(
        &mut out,
        "conversations",
        &summary.conversations,
        expected.conversations,
        "ready",
        "",
    );

    let messages = &summary.messages;
    let _ = writeln!(
        out,
        "messages:      {} sent, {} skipped, {} failed (sent + skipped + failed = {}, corpus {}) in {:.1}s",
        messages.sent,
        messages.skipped_count(),
        messages.failed_count(),
        messages.sent + messages.skipped_count() + messages.failed_count(),
        expected.corpus_messages,
        messages.seconds
    );
    for (reason, count) in &messages.skipped {
        let _ = writeln!(out, "  skipped {count}: {reason}");
    }
    if !messages.failed.is_empty() {
        let _ = writeln!(out, "  failed: {}", counts(&messages.failed));
    }
    let _ = writeln!(
        out,
        "send rate:     {:.0} messages/s, latency p50 {:.2} ms, p99 {:.2} ms",
        messages.per_second, messages.p50_ms, messages.p99_ms
    );
    let _ = writeln!(
        out,
        "total:         {:.1}s, {} steps retried after overload, unavailability or a missed deadline",
        summary.total_seconds, summary.retries
    );
    out
}

fn phase_line(
    out: &mut String,
    name: &str,
    phase: &PhaseSummary,
    expected: usize,
    created: &str,
    existing: &str,
) {
    let mut line = format!(
        "{:<14} {} of {expected} ({} {created}",
        format!("{name}:"),
        phase.created + phase.existing,
        phase.created
    );
    if !existing.is_empty() {
        let _ = write!(line, ", {} {existing}", phase.existing);
    }
    let _ = write!(line, ") in {:.1}s", phase.seconds);
    if !phase.failed.is_empty() {
        let _ = write!(line, "; failed: {}", counts(&phase.failed));
    }
    let _ = writeln!(out, "{line}");
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(key, count)| format!("{key}={count}"))
        .collect::<Vec<_>>()
        .join(" ")
}
