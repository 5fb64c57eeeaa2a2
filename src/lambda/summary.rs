//! What an operator gets per invocation besides the logs: one `invocation summary` line with the
//! counters per destination, and one EMF line per destination that CloudWatch turns into
//! metrics (crate::metrics).

use crate::handler::HandlerError;
use crate::metrics::InvocationMetrics;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The one line per invocation an operator reads first: totals as fields, and per destination
/// the same counters as a compact JSON object. Never a payload or a secret: counters only.
pub fn log_summary(
    kind: &str,
    metrics: &InvocationMetrics,
    error: Option<&HandlerError>,
    duration: Duration,
) {
    let t = metrics.totals();
    tracing::info!(
        kind,
        delivered = t.delivered,
        filtered = t.filtered,
        rejected = t.rejected,
        retried = t.retried,
        dead_lettered = t.dead_lettered,
        requests = t.upload_requests,
        retries = t.retries,
        throttled = t.throttled,
        secrets_fetched = t.secrets_cache_miss,
        secrets_stale = t.secrets_stale,
        circuit_opened = t.circuit_opened,
        circuit_refused = t.circuit_refused,
        visibility_extended = t.visibility_extended,
        visibility_failed = t.visibility_failed,
        duration_ms = duration.as_millis() as u64,
        code = error.map(HandlerError::code),
        destinations = %metrics.per_destination_summary(),
        "invocation summary"
    );
}

/// Writes the invocation's counters to stdout as CloudWatch EMF lines (crate::metrics): Lambda
/// ships them to CloudWatch Logs, which turns them into metrics without an API call.
pub(super) fn emit_metrics(function: &str, metrics: &InvocationMetrics) {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut out = std::io::stdout().lock();
    for doc in metrics.emf_documents(function, now_ms) {
        let _ = writeln!(out, "{doc}");
    }
}
