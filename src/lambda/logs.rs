//! What the function writes to stdout in Lambda, shaped for the two readers downstream:
//! Lambda's own log-level filter (JSON lines with `level` and an RFC 3339 `timestamp`, or Lambda
//! counts a line as INFO) and CloudWatch Logs Insights (fields it can query, the X-Ray trace id
//! on every line of an invocation).
//!
//! - The `tracing` subscriber: lambda_runtime's default (JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`)
//!   plus timestamps, its level `AWS_LAMBDA_LOG_LEVEL` alone when Lambda sets it, else the
//!   `RUST_LOG` filter, so the level the function filters at and the one Lambda filters at are
//!   the same. Lines inside an invocation
//!   carry its span: `span.requestId`, `span.xrayTraceId`.
//! - The invocation summary and the EMF documents are written here directly, not through
//!   `tracing`: `tracing` fields are strings and numbers, and the summary's `destinations` must be
//!   a JSON object. The summary keeps the shape of the other lines (`fields`, `span`); the EMF
//!   documents get `requestId` and `xrayTraceId` at their root, and a level Lambda never filters
//!   out (metrics and the alarms on them must not depend on the log level).

use crate::config::vars;
use crate::metrics::{Emf, InvocationMetrics};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::str::FromStr;
use std::time::Duration;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};

/// The name of lambda_runtime's invocation span, which the summary line names as its own.
const INVOCATION_SPAN: &str = "Lambda runtime invoke";

/// Installs the Lambda subscriber on stdout (see the module header).
pub fn init_lambda_subscriber() {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    // Lambda's level, when set, is the level: RUST_LOG directives could only let through lines
    // Lambda would drop anyway (lambda_runtime's own subscriber lets RUST_LOG override it).
    let filter = match get(vars::AWS_LAMBDA_LOG_LEVEL) {
        Some(level) => EnvFilter::builder()
            .with_default_directive(level_filter(&level).into())
            .parse_lossy(""),
        None => EnvFilter::builder()
            .with_default_directive(LevelFilter::INFO.into())
            .from_env_lossy(),
    };
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .with_timer(SystemTime)
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let json = get(vars::AWS_LAMBDA_LOG_FORMAT).is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// A level name as Lambda spells it (any case); Lambda's `FATAL` is `tracing`'s ERROR, and
/// anything else INFO.
fn level_filter(value: &str) -> LevelFilter {
    if value.trim().eq_ignore_ascii_case("fatal") {
        return LevelFilter::ERROR;
    }
    LevelFilter::from_str(value.trim()).unwrap_or(LevelFilter::INFO)
}

/// The level written on EMF lines: INFO, or Lambda's application log level when that is
/// stricter, so Lambda's filter keeps every metric.
pub fn metrics_level(aws_lambda_log_level: Option<&str>) -> &'static str {
    match aws_lambda_log_level.map(|l| l.trim().to_ascii_uppercase()) {
        Some(l) if l == "WARN" => "WARN",
        Some(l) if l == "ERROR" => "ERROR",
        Some(l) if l == "FATAL" => "FATAL",
        _ => "INFO",
    }
}

/// The invocation's X-Ray trace id: the Runtime API's (`Lambda-Runtime-Trace-Id`), else
/// `_X_AMZN_TRACE_ID`, which lambda_runtime sets from it for each invocation.
pub fn trace_id(from_context: Option<&str>) -> Option<String> {
    trace_id_from(from_context, |name| std::env::var(name).ok())
}

/// [`trace_id`] with the environment read through `lookup`.
fn trace_id_from(
    from_context: Option<&str>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    from_context
        .map(str::to_owned)
        .or_else(|| lookup(vars::X_AMZN_TRACE_ID))
        .filter(|t| !t.is_empty())
}

/// Now, RFC 3339 in UTC (`2026-12-08T00:49:13.123456Z`), as the subscriber writes it.
pub fn timestamp_now() -> String {
    let mut out = String::new();
    let _ = SystemTime.format_time(&mut Writer::new(&mut out));
    out
}

/// What identifies the invocation on each line.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub request_id: String,
    pub trace_id: Option<String>,
}

/// The one line per invocation an operator reads first: totals as fields, per destination the
/// same counters as a JSON object (`fields.destinations.<id>.rejected`). Counters only: never
/// a payload or a secret.
pub fn summary_line(
    invocation: &Invocation,
    kind: &str,
    metrics: &InvocationMetrics,
    code: Option<&str>,
    duration: Duration,
    timestamp: &str,
) -> Value {
    let t = metrics.totals();
    let fields = json!({
        "message": "invocation summary",
        "kind": kind,
        "delivered": t.delivered,
        "filtered": t.filtered,
        "rejected": t.rejected,
        "retried": t.retried,
        "dead_lettered": t.dead_lettered,
        "requests": t.upload_requests,
        "retries": t.retries,
        "throttled": t.throttled,
        "secrets_fetched": t.secrets_cache_miss,
        "secrets_stale": t.secrets_stale,
        "circuit_opened": t.circuit_opened,
        "circuit_refused": t.circuit_refused,
        "visibility_extended": t.visibility_extended,
        "visibility_failed": t.visibility_failed,
        "duration_ms": duration.as_millis() as u64,
        "code": code,
        "destinations": metrics.per_destination_summary(),
    });
    let mut span = Map::new();
    span.insert("requestId".into(), json!(invocation.request_id));
    if let Some(trace) = &invocation.trace_id {
        span.insert("xrayTraceId".into(), json!(trace));
    }
    span.insert("name".into(), json!(INVOCATION_SPAN));
    json!({
        "timestamp": timestamp,
        "level": "INFO",
        "fields": fields,
        "span": span,
    })
}

/// Adds what identifies the line to an EMF document: its level and time for Lambda's filter,
/// the request and trace ids for Logs Insights. None of these is a dimension or a metric.
pub fn stamp_emf(doc: &mut Value, invocation: &Invocation, level: &str, timestamp: &str) {
    if let Some(root) = doc.as_object_mut() {
        root.insert("level".into(), json!(level));
        root.insert("timestamp".into(), json!(timestamp));
        root.insert("requestId".into(), json!(invocation.request_id));
        if let Some(trace) = &invocation.trace_id {
            root.insert("xrayTraceId".into(), json!(trace));
        }
    }
}

/// What the lines of one invocation share, read from its Lambda context and the configuration.
pub struct AfterInvocation<'a> {
    invocation: Invocation,
    emf: Emf<'a>,
}

/// The lines' shared parts for the invocation of `ctx`.
pub fn after_invocation<'a>(
    ctx: &'a lambda_runtime::Context,
    config: &'a crate::config::Config,
    cold_start: bool,
) -> AfterInvocation<'a> {
    AfterInvocation {
        invocation: Invocation {
            request_id: ctx.request_id.clone(),
            trace_id: trace_id(ctx.xray_trace_id.as_deref()),
        },
        emf: Emf {
            namespace: &config.metrics_namespace,
            function: &ctx.env_config.function_name,
            per_destination: config.metrics_per_destination,
            cold_start,
        },
    }
}

impl AfterInvocation<'_> {
    /// Writes the summary line and the EMF lines ([`write_invocation`]).
    pub fn write(
        &self,
        kind: &str,
        metrics: &InvocationMetrics,
        code: Option<&str>,
        duration: Duration,
    ) {
        write_invocation(&self.invocation, kind, metrics, code, duration, &self.emf);
    }
}

/// Writes the invocation's summary line (when INFO lines are on) and its EMF lines to stdout.
pub fn write_invocation(
    invocation: &Invocation,
    kind: &str,
    metrics: &InvocationMetrics,
    code: Option<&str>,
    duration: Duration,
    emf: &Emf<'_>,
) {
    let timestamp = timestamp_now();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let level = metrics_level(std::env::var(vars::AWS_LAMBDA_LOG_LEVEL).ok().as_deref());
    let mut out = std::io::stdout().lock();
    if tracing::enabled!(tracing::Level::INFO) {
        let line = summary_line(invocation, kind, metrics, code, duration, &timestamp);
        let _ = writeln!(out, "{line}");
    }
    for mut doc in metrics.emf_documents(emf, now_ms) {
        stamp_emf(&mut doc, invocation, level, &timestamp);
        let _ = writeln!(out, "{doc}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(trace: Option<&str>) -> Invocation {
        Invocation {
            request_id: "req-1".into(),
            trace_id: trace.map(str::to_owned),
        }
    }

    fn metrics() -> InvocationMetrics {
        let mut m = InvocationMetrics::default();
        m.destination("dest-a").delivered = 3;
        m.destination("dest-b").rejected = 2;
        m
    }

    #[test]
    fn the_summary_line_holds_destinations_as_an_object_and_the_trace_id() {
        let trace = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1";
        let line = summary_line(
            &invocation(Some(trace)),
            "sqs",
            &metrics(),
            None,
            Duration::from_millis(12),
            "2026-01-01T00:00:00.000000Z",
        );
        let f = &line["fields"];
        assert_eq!(f["message"], "invocation summary");
        assert_eq!(f["delivered"], 3);
        assert_eq!(f["rejected"], 2);
        assert_eq!(f["duration_ms"], 12);
        assert!(f["destinations"].is_object(), "{line}");
        assert_eq!(f["destinations"]["dest-b"]["rejected"], 2);
        assert_eq!(line["span"]["xrayTraceId"], trace);
        assert_eq!(line["span"]["requestId"], "req-1");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["timestamp"], "2026-01-01T00:00:00.000000Z");
        let without = summary_line(
            &invocation(None),
            "sqs",
            &metrics(),
            Some("unknown_event"),
            Duration::ZERO,
            "t",
        );
        assert!(without["span"].get("xrayTraceId").is_none());
        assert_eq!(without["fields"]["code"], "unknown_event");
    }

    #[test]
    fn emf_lines_carry_the_ids_and_a_level_lambda_keeps() {
        let mut doc = json!({"_aws": {}});
        stamp_emf(&mut doc, &invocation(Some("Root=1-x")), "WARN", "t");
        assert_eq!(doc["xrayTraceId"], "Root=1-x");
        assert_eq!(doc["requestId"], "req-1");
        assert_eq!(doc["level"], "WARN");
        assert_eq!(metrics_level(None), "INFO");
        assert_eq!(metrics_level(Some("debug")), "INFO");
        assert_eq!(metrics_level(Some("INFO")), "INFO");
        assert_eq!(metrics_level(Some("warn")), "WARN");
        assert_eq!(metrics_level(Some("FATAL")), "FATAL");
    }

    #[test]
    fn lambda_level_names_map_to_tracing_filters() {
        assert_eq!(level_filter("DEBUG"), LevelFilter::DEBUG);
        assert_eq!(level_filter("WARN"), LevelFilter::WARN);
        assert_eq!(level_filter("FATAL"), LevelFilter::ERROR);
        assert_eq!(
            level_filter("info,rudder_clevertap=debug"),
            LevelFilter::INFO
        );
    }

    #[test]
    fn the_trace_id_comes_from_the_context_else_from_x_amzn_trace_id() {
        let env = |name: &str| (name == "_X_AMZN_TRACE_ID").then(|| "Root=1-env".to_owned());
        let unset = |_: &str| None;
        assert_eq!(
            trace_id_from(Some("Root=1-ctx"), env).as_deref(),
            Some("Root=1-ctx")
        );
        assert_eq!(trace_id_from(None, env).as_deref(), Some("Root=1-env"));
        assert_eq!(trace_id_from(None, unset), None);
        assert_eq!(trace_id_from(Some(""), unset), None);
    }

    #[test]
    fn timestamps_are_rfc_3339_in_utc() {
        let t = timestamp_now();
        assert!(t.ends_with('Z') && t.contains('T') && t.len() >= 20, "{t}");
    }
}
