//! Per-call logs and metrics shared by the server and client sides.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use metrics::{Counter, Histogram};

use crate::context::CallContext;
use crate::error::ServiceError;

/// Counter of finished server calls, labelled by `method` and `code`.
pub const SERVER_REQUESTS_TOTAL: &str = "rpc_server_requests_total";
/// Histogram of server call durations in milliseconds, labelled by `method` and `code`.
pub const SERVER_DURATION_MS: &str = "rpc_server_request_duration_ms";
/// Counter of finished client calls, labelled by `method` and `code`.
pub const CLIENT_REQUESTS_TOTAL: &str = "rpc_client_requests_total";
/// Histogram of client call durations in milliseconds, labelled by `method` and `code`.
pub const CLIENT_DURATION_MS: &str = "rpc_client_request_duration_ms";

/// Calls slower than this are logged at WARN; replaced at start from `log.slow_call_ms`.
static SLOW_CALL_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(500);

/// Sets the slow-call threshold.
pub fn set_slow_call_threshold(threshold: Duration) {
    let ms = u64::try_from(threshold.as_millis()).unwrap_or(u64::MAX);
    SLOW_CALL_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
}

fn slow_call_threshold_ms() -> u64 {
    SLOW_CALL_MS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The server metrics' handles, by method and code.
type ServerMetricHandles = HashMap<(&'static str, tonic::Code), (Counter, Histogram)>;

thread_local! {
    /// Handles of the server metrics by method and code, on this thread. Looking a labelled
    /// metric up in the recorder took a fifth of a cached GetUserInfo's handler time.
    static SERVER_METRICS: RefCell<ServerMetricHandles> = RefCell::new(HashMap::new());
}

/// Adds one call to the server metrics of `method` and `code`.
fn record_server_metrics(method: &'static str, code: tonic::Code, duration_ms: f64) {
    let code_label = code_name(code);
    let lookup = || {
        (
            metrics::counter!(SERVER_REQUESTS_TOTAL, "method" => method, "code" => code_label),
            metrics::histogram!(SERVER_DURATION_MS, "method" => method, "code" => code_label),
        )
    };
    let record = |(counter, histogram): &(Counter, Histogram)| {
        counter.increment(1);
        histogram.record(duration_ms);
    };
    // Handles are kept only from the process's Prometheus recorder, which stays installed for
    // good once set. Before that, a handle could belong to no recorder.
    if !crate::telemetry::metrics_installed() {
        record(&lookup());
        return;
    }
    SERVER_METRICS.with(|handles| {
        let mut handles = handles.borrow_mut();
        record(handles.entry((method, code)).or_insert_with(lookup));
    });
}

/// Records one finished server call: a log line with trace id, method, code and duration, and
/// the two server metrics.
pub fn record_server_call(
    method: &'static str,
    ctx: &CallContext,
    code: tonic::Code,
    elapsed: Duration,
    error: Option<&ServiceError>,
) {
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    let code_label = code_name(code);
    record_server_metrics(method, code, duration_ms);

    let trace_id = ctx.trace_id.as_str();
    if duration_ms >= slow_call_threshold_ms() as f64 {
        tracing::warn!(
            trace_id,
            method,
            code = code_label,
            duration_ms,
            "slow call"
        );
    }
    match error {
        Some(ServiceError::Internal(source)) => {
            tracing::error!(trace_id, method, code = code_label, duration_ms, error = %source, "call failed");
        }
        Some(err) => {
            tracing::info!(trace_id, method, code = code_label, duration_ms, error = %err, "call refused");
        }
        None => tracing::debug!(
            trace_id,
            method,
            code = code_label,
            duration_ms,
            "call finished"
        ),
    }
}

/// Records one finished client call with the client metrics.
pub fn record_client_call(method: &str, code: tonic::Code, elapsed: Duration) {
    let code_label = code_name(code);
    let method = method.to_owned();
    metrics::counter!(CLIENT_REQUESTS_TOTAL, "method" => method.clone(), "code" => code_label)
        .increment(1);
    metrics::histogram!(CLIENT_DURATION_MS, "method" => method, "code" => code_label)
        .record(elapsed.as_secs_f64() * 1000.0);
}

/// The canonical upper-case name of a gRPC code, as used in metric labels.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Counts a call that a serving layer rejected before the RPC's adapter ran (bad token, load
/// shedding), under the same server metrics as finished calls.
pub fn count_server_rejection(method: &str, code: tonic::Code) {
    let code_label = code_name(code);
    let method = method.to_owned();
    metrics::counter!(SERVER_REQUESTS_TOTAL, "method" => method.clone(), "code" => code_label)
        .increment(1);
    metrics::histogram!(SERVER_DURATION_MS, "method" => method, "code" => code_label).record(0.0);
}
