//! Per-invocation counters, their CloudWatch Embedded Metric Format (EMF) documents, and the
//! invocation's one summary log line.
//!
//! Lambda ships every stdout line to CloudWatch Logs, and CloudWatch turns a line carrying an
//! `_aws` block into metrics without any API call, so metrics cost no latency and need no IAM
//! permission. Every metric is emitted under `[function]`, so one alarm covers every
//! destination, and, unless `METRICS_PER_DESTINATION=false`, under `[function, destination]`
//! too: one JSON line per destination and invocation (each destination is 15 more custom
//! metrics, which CloudWatch bills per month). The namespace is `METRICS_NAMESPACE`.
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

    /// Per destination, the counters an operator reads first, as a JSON object
    /// (`{"dest-a":{"delivered":3,...}}`): the summary line's `destinations` member, which
    /// CloudWatch Logs Insights reads as fields (`destinations.dest-a.rejected`).
    pub fn per_destination_summary(&self) -> Value {
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
        Value::Object(map)
    }

    /// The invocation's EMF documents, timestamped `timestamp_ms` (ms since the epoch).
    ///
    /// Per destination (`per_destination`): one document per destination whose metrics land
    /// under both dimension sets, `[function, destination]` and `[function]`, so one alarm on
    /// the function-level set covers every destination; the first document also carries
    /// `ColdStart` under `[function]`. Otherwise: one document with the totals, `[function]`
    /// only. An invocation without any counter still writes `ColdStart`.
    pub fn emf_documents(&self, emf: &Emf<'_>, timestamp_ms: u64) -> Vec<Value> {
        if self.per_destination.is_empty() {
            // Nothing was counted: only the cold-start flag is worth a metric.
            return vec![cold_start_only(emf, timestamp_ms)];
        }
        if !emf.per_destination {
            return vec![emf_document(emf, None, &self.totals(), timestamp_ms)];
        }
        self.per_destination
            .iter()
            .enumerate()
            .map(|(i, (destination, c))| {
                let mut doc = emf_document(emf, Some(destination), c, timestamp_ms);
                if i == 0 {
                    add_cold_start(&mut doc, emf);
                }
                doc
            })
            .collect()
    }
}

/// What the EMF documents of one invocation share.
#[derive(Debug, Clone, Copy)]
pub struct Emf<'a> {
    /// CloudWatch namespace (`METRICS_NAMESPACE`).
    pub namespace: &'a str,
    /// The function's name: the `function` dimension.
    pub function: &'a str,
    /// Also per destination (`METRICS_PER_DESTINATION`).
    pub per_destination: bool,
    /// The container's first invocation.
    pub cold_start: bool,
}

/// Dimension names, as the template's alarms and dashboard use them.
pub const FUNCTION_DIMENSION: &str = "function";
pub const DESTINATION_DIMENSION: &str = "destination";
/// 1 in the container's first invocation, else 0 (function-level only).
pub const COLD_START: &str = "ColdStart";

/// Every metric name and unit, in one place (`ColdStart` aside, which is function-level only).
pub const METRICS: [(&str, &str); 15] = [
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

/// Every metric name this function can emit, `ColdStart` included.
pub fn metric_names() -> impl Iterator<Item = &'static str> {
    METRICS
        .iter()
        .map(|(name, _)| *name)
        .chain(std::iter::once(COLD_START))
}

/// The EMF document of one destination's counters (`Some`), or of the totals (`None`).
pub fn emf_document(
    emf: &Emf<'_>,
    destination: Option<&str>,
    c: &DestinationCounters,
    timestamp_ms: u64,
) -> Value {
    let mut definitions: Vec<Value> = METRICS
        .iter()
        .filter(|(name, _)| *name != "UploadLatency" || !c.upload_latency_ms.is_empty())
        .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
        .collect();
    let dimensions = match destination {
        Some(_) => json!([
            [FUNCTION_DIMENSION, DESTINATION_DIMENSION],
            [FUNCTION_DIMENSION]
        ]),
        None => {
            definitions.push(json!({"Name": COLD_START, "Unit": "Count"}));
            json!([[FUNCTION_DIMENSION]])
        }
    };
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": emf.namespace,
                "Dimensions": dimensions,
                "Metrics": definitions,
            }],
        }),
    );
    doc.insert(FUNCTION_DIMENSION.into(), json!(emf.function));
    if let Some(destination) = destination {
        doc.insert(DESTINATION_DIMENSION.into(), json!(destination));
    } else {
        doc.insert(COLD_START.into(), json!(u8::from(emf.cold_start)));
    }
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

/// Adds a second directive to a per-destination document: `ColdStart` under `[function]`.
fn add_cold_start(doc: &mut Value, emf: &Emf<'_>) {
    let Some(root) = doc.as_object_mut() else {
        return;
    };
    if let Some(directives) = root
        .get_mut("_aws")
        .and_then(|aws| aws.get_mut("CloudWatchMetrics"))
        .and_then(Value::as_array_mut)
    {
        directives.push(json!({
            "Namespace": emf.namespace,
            "Dimensions": [[FUNCTION_DIMENSION]],
            "Metrics": [{"Name": COLD_START, "Unit": "Count"}],
        }));
        root.insert(COLD_START.into(), json!(u8::from(emf.cold_start)));
    }
}

/// The document of an invocation that counted nothing: `ColdStart` alone.
fn cold_start_only(emf: &Emf<'_>, timestamp_ms: u64) -> Value {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": emf.namespace,
                "Dimensions": [[FUNCTION_DIMENSION]],
                "Metrics": [{"Name": COLD_START, "Unit": "Count"}],
            }],
        },
        (FUNCTION_DIMENSION): emf.function,
        (COLD_START): u8::from(emf.cold_start),
    })
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

    const EMF: Emf<'static> = Emf {
        namespace: "Test/NS",
        function: "fn-1",
        per_destination: true,
        cold_start: true,
    };

    /// Every directive's metrics and dimensions have a value at the document's root.
    fn assert_well_formed(doc: &Value) {
        for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(directive["Namespace"], "Test/NS");
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                assert!(doc.get(name).is_some(), "{name} declared but missing");
                assert!(metric_names().any(|n| n == name), "{name} unknown");
                assert!(metric["Unit"].is_string());
            }
            for set in directive["Dimensions"].as_array().unwrap() {
                for dimension in set.as_array().unwrap() {
                    let dimension = dimension.as_str().unwrap();
                    assert!(doc[dimension].is_string(), "{dimension} missing");
                }
            }
        }
    }

    #[test]
    fn every_document_has_the_aws_block_cloudwatch_requires() {
        for doc in sample().emf_documents(&EMF, 1_700_000_000_000) {
            assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000u64);
            assert_well_formed(&doc);
            assert_eq!(doc["function"], "fn-1");
            assert!(doc["destination"].is_string());
        }
    }

    #[test]
    fn per_destination_metrics_also_land_under_the_function_level_set() {
        let docs = sample().emf_documents(&EMF, 1);
        for doc in &docs {
            assert_eq!(
                doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([["function", "destination"], ["function"]])
            );
        }
        // ColdStart once per invocation, function-level only.
        assert_eq!(docs[0]["ColdStart"], 1);
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][1]["Dimensions"],
            json!([["function"]])
        );
        assert!(docs[1].get("ColdStart").is_none());
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn without_per_destination_metrics_one_document_holds_the_totals() {
        let emf = Emf {
            per_destination: false,
            cold_start: false,
            ..EMF
        };
        let docs = sample().emf_documents(&emf, 1);
        assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        assert_well_formed(doc);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["function"]])
        );
        assert!(doc.get("destination").is_none());
        assert_eq!(doc["EventsDelivered"], 7);
        assert_eq!(doc["EventsRetried"], 3);
        assert_eq!(doc["ColdStart"], 0);
    }

    #[test]
    fn an_invocation_that_counted_nothing_still_reports_its_cold_start() {
        let docs = InvocationMetrics::default().emf_documents(&EMF, 1);
        assert_eq!(docs.len(), 1);
        assert_well_formed(&docs[0]);
        assert_eq!(docs[0]["ColdStart"], 1);
        assert!(docs[0].get("EventsDelivered").is_none());
    }

    #[test]
    fn counters_land_under_their_metric_names_per_destination() {
        let docs = sample().emf_documents(&EMF, 1);
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
        let per = m.per_destination_summary();
        assert!(per.is_object());
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
