//! Per-invocation counters, their CloudWatch Embedded Metric Format (EMF) documents, and the
//! invocation's one summary log line.
//!
//! Lambda ships every stdout line to CloudWatch Logs, and CloudWatch turns a line carrying an
//! `_aws` block into metrics without any API call, so metrics cost no latency and need no IAM
//! permission. One JSON line per destination and invocation, dimensions `function` and
//! `destination`.
//!
//! Written directly rather than with a crate: the format is one JSON object with a fixed
//! `_aws` block (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
//! `metrics_cloudwatch_embedded` would bring the `metrics` facade, a global recorder and its
//! registry (atomics, hashing of label sets) to produce that one line, and would decide itself
//! when to flush; here the counters are plain fields of the one invocation in flight, and the
//! lines are written once, after the answer, by `lambda::serve`.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// CloudWatch namespace of every metric this function emits.
pub const NAMESPACE: &str = "RudderCleverTap";

/// EMF allows at most 100 values in one metric array; extra latencies are dropped.
const MAX_VALUES_PER_METRIC: usize = 100;

/// What happened to one destination's events in one invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DestinationCounters {
    pub delivered: u64,
    /// Events dropped on purpose (message type, consent, event filter): not sent, not retried.
    pub filtered: u64,
    pub rejected: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub upload_requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub secrets_cache_miss: u64,
    /// Lookups answered with settings past their TTL because Secrets Manager failed.
    pub secrets_stale: u64,
    /// Times the account's circuit opened (closed → open) during this destination's calls.
    pub circuit_opened: u64,
    /// Times it closed again.
    pub circuit_closed: u64,
    /// Requests not sent because the circuit was open.
    pub circuit_refused: u64,
    /// Retried SQS messages whose visibility was changed (visibility backoff).
    pub visibility_extended: u64,
    /// Retried SQS messages whose visibility change failed (they come back after the queue's
    /// own timeout).
    pub visibility_failed: u64,
    /// Latency of each upload request, in milliseconds.
    pub upload_latency_ms: Vec<f64>,
}

impl DestinationCounters {
    pub fn record_latency(&mut self, latency: Duration) {
        if self.upload_latency_ms.len() < MAX_VALUES_PER_METRIC {
            self.upload_latency_ms.push(latency.as_secs_f64() * 1000.0);
        }
    }

    /// Adds another set of counters into this one.
    pub fn add(&mut self, other: &DestinationCounters) {
        self.delivered += other.delivered;
        self.filtered += other.filtered;
        self.rejected += other.rejected;
        self.retried += other.retried;
        self.dead_lettered += other.dead_lettered;
        self.upload_requests += other.upload_requests;
        self.retries += other.retries;
        self.throttled += other.throttled;
        self.secrets_cache_miss += other.secrets_cache_miss;
        self.secrets_stale += other.secrets_stale;
        self.circuit_opened += other.circuit_opened;
        self.circuit_closed += other.circuit_closed;
        self.circuit_refused += other.circuit_refused;
        self.visibility_extended += other.visibility_extended;
        self.visibility_failed += other.visibility_failed;
        for latency in &other.upload_latency_ms {
            if self.upload_latency_ms.len() < MAX_VALUES_PER_METRIC {
                self.upload_latency_ms.push(*latency);
            }
        }
    }
}

/// Dimension value of counters that belong to no destination (a message without a usable
/// destination id, an unknown event).
pub const NO_DESTINATION: &str = "-";

/// The counters of one invocation, per destination id (`-` where no destination was known).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvocationMetrics {
    pub per_destination: BTreeMap<String, DestinationCounters>,
}

impl InvocationMetrics {
    /// The counters of one destination, created on first use.
    pub fn destination(&mut self, destination: &str) -> &mut DestinationCounters {
        self.per_destination
            .entry(destination.to_owned())
            .or_default()
    }

    /// The sum over every destination.
    pub fn totals(&self) -> DestinationCounters {
        let mut total = DestinationCounters::default();
        for c in self.per_destination.values() {
            total.add(c);
        }
        total
    }

    /// Per destination, the counters an operator reads first, as one compact JSON object
    /// (`{"dest-a":{"delivered":3,...}}`) for the summary log line.
    pub fn per_destination_summary(&self) -> String {
        let map: Map<String, Value> = self
            .per_destination
            .iter()
            .map(|(destination, c)| {
                (
                    destination.clone(),
                    json!({
                        "delivered": c.delivered,
                        "filtered": c.filtered,
                        "rejected": c.rejected,
                        "retried": c.retried,
                        "dead_lettered": c.dead_lettered,
                        "requests": c.upload_requests,
                        "retries": c.retries,
                        "throttled": c.throttled,
                        "circuit_refused": c.circuit_refused,
                        "visibility_extended": c.visibility_extended,
                        "secrets_stale": c.secrets_stale,
                    }),
                )
            })
            .collect();
        Value::Object(map).to_string()
    }

    /// One EMF document per destination, timestamped `timestamp_ms` (ms since the epoch).
    pub fn emf_documents(&self, function: &str, timestamp_ms: u64) -> Vec<Value> {
        self.per_destination
            .iter()
            .map(|(destination, c)| emf_document(function, destination, c, timestamp_ms))
            .collect()
    }
}

/// The metric names and units, in one place.
const METRICS: [(&str, &str); 15] = [
    ("EventsDelivered", "Count"),
    ("EventsFiltered", "Count"),
    ("EventsRejected", "Count"),
    ("EventsRetried", "Count"),
    ("EventsDeadLettered", "Count"),
    ("UploadRequests", "Count"),
    ("UploadLatency", "Milliseconds"),
    ("CleverTapThrottled", "Count"),
    ("SecretsCacheMiss", "Count"),
    ("SecretsStale", "Count"),
    ("CircuitOpened", "Count"),
    ("CircuitClosed", "Count"),
    ("CircuitRefused", "Count"),
    ("VisibilityExtended", "Count"),
    ("VisibilityChangeFailed", "Count"),
];

/// The EMF document of one destination's counters.
pub fn emf_document(
    function: &str,
    destination: &str,
    c: &DestinationCounters,
    timestamp_ms: u64,
) -> Value {
    let definitions: Vec<Value> = METRICS
        .iter()
        .filter(|(name, _)| *name != "UploadLatency" || !c.upload_latency_ms.is_empty())
        .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
        .collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["function", "destination"]],
                "Metrics": definitions,
            }],
        }),
    );
    doc.insert("function".into(), json!(function));
    doc.insert("destination".into(), json!(destination));
    doc.insert("EventsDelivered".into(), json!(c.delivered));
    doc.insert("EventsFiltered".into(), json!(c.filtered));
    doc.insert("EventsRejected".into(), json!(c.rejected));
    doc.insert("EventsRetried".into(), json!(c.retried));
    doc.insert("EventsDeadLettered".into(), json!(c.dead_lettered));
    doc.insert("UploadRequests".into(), json!(c.upload_requests));
    if !c.upload_latency_ms.is_empty() {
        doc.insert("UploadLatency".into(), json!(c.upload_latency_ms));
    }
    doc.insert("CleverTapThrottled".into(), json!(c.throttled));
    doc.insert("SecretsCacheMiss".into(), json!(c.secrets_cache_miss));
    doc.insert("SecretsStale".into(), json!(c.secrets_stale));
    doc.insert("CircuitOpened".into(), json!(c.circuit_opened));
    doc.insert("CircuitClosed".into(), json!(c.circuit_closed));
    doc.insert("CircuitRefused".into(), json!(c.circuit_refused));
    doc.insert("VisibilityExtended".into(), json!(c.visibility_extended));
    doc.insert("VisibilityChangeFailed".into(), json!(c.visibility_failed));
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> InvocationMetrics {
        let mut m = InvocationMetrics::default();
        let d = m.destination("dest-a");
        d.delivered = 7;
        d.rejected = 2;
        d.dead_lettered = 2;
        d.upload_requests = 1;
        d.record_latency(Duration::from_millis(42));
        let b = m.destination("dest-b");
        b.retried = 3;
        b.circuit_opened = 1;
        b.circuit_refused = 4;
        b.visibility_extended = 3;
        b.secrets_stale = 2;
        m
    }

    #[test]
    fn every_document_has_the_aws_block_cloudwatch_requires() {
        for doc in sample().emf_documents("fn-1", 1_700_000_000_000) {
            let aws = &doc["_aws"];
            assert_eq!(aws["Timestamp"], 1_700_000_000_000u64);
            let directive = &aws["CloudWatchMetrics"][0];
            assert_eq!(directive["Namespace"], NAMESPACE);
            assert_eq!(
                directive["Dimensions"],
                json!([["function", "destination"]])
            );
            // Every declared metric and every dimension has a value at the root.
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                assert!(doc.get(name).is_some(), "{name} declared but missing");
                assert!(metric["Unit"].is_string());
            }
            assert_eq!(doc["function"], "fn-1");
            assert!(doc["destination"].is_string());
        }
    }

    #[test]
    fn counters_land_under_their_metric_names_per_destination() {
        let docs = sample().emf_documents("fn-1", 1);
        assert_eq!(docs.len(), 2);
        let a = &docs[0];
        assert_eq!(a["destination"], "dest-a");
        assert_eq!(a["EventsDelivered"], 7);
        assert_eq!(a["EventsRejected"], 2);
        assert_eq!(a["EventsDeadLettered"], 2);
        assert_eq!(a["UploadRequests"], 1);
        assert_eq!(a["UploadLatency"], json!([42.0]));
        let b = &docs[1];
        assert_eq!(b["EventsRetried"], 3);
        assert_eq!(b["CircuitOpened"], 1);
        assert_eq!(b["CircuitRefused"], 4);
        assert_eq!(b["VisibilityExtended"], 3);
        assert_eq!(b["VisibilityChangeFailed"], 0);
        assert_eq!(b["SecretsStale"], 2);
        assert!(b.get("UploadLatency").is_none());
        let names: Vec<_> = b["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap().to_owned())
            .collect();
        assert!(!names.contains(&"UploadLatency".to_owned()));
        assert!(names.contains(&"SecretsCacheMiss".to_owned()));
    }

    #[test]
    fn the_summary_adds_up_every_destination_and_names_each_one() {
        let m = sample();
        let t = m.totals();
        assert_eq!(
            (t.delivered, t.rejected, t.retried, t.dead_lettered),
            (7, 2, 3, 2)
        );
        assert_eq!(t.upload_requests, 1);
        let per: Value = serde_json::from_str(&m.per_destination_summary()).unwrap();
        assert_eq!(per["dest-a"]["delivered"], 7);
        assert_eq!(per["dest-a"]["requests"], 1);
        assert_eq!(per["dest-b"]["retried"], 3);
    }

    #[test]
    fn latency_values_stop_at_the_emf_array_limit() {
        let mut c = DestinationCounters::default();
        for _ in 0..150 {
            c.record_latency(Duration::from_millis(1));
        }
        assert_eq!(c.upload_latency_ms.len(), MAX_VALUES_PER_METRIC);
    }
}
