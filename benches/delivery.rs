//! Delivery overhead per event: batching, request bodies, the account bound, reading the
//! answer and deriving outcomes, against an in-process transport that accepts everything at
//! once (no network), so the figure is our cost alone.
//!
//! Run: `cargo bench --bench delivery`

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rudder_clevertap::clevertap::transport::{ApiRequest, HttpReply, TransportError};
use rudder_clevertap::delivery::{Delivery, DeliveryPolicy};
use rudder_clevertap::ports::Transport;
use rudder_clevertap::settings::DestinationSettings;
use rudder_clevertap::transform::Record;
use std::hint::black_box;
use std::time::Duration;
use tokio::time::Instant;

/// Accepts every request at once.
struct InstantSuccess;

impl Transport for InstantSuccess {
    async fn post(&self, request: ApiRequest<'_>) -> Result<HttpReply, TransportError> {
        black_box(&request.body);
        Ok(HttpReply {
            status: 200,
            body: Bytes::from_static(br#"{"status":"success","processed":1000,"unprocessed":[]}"#),
        })
    }
}

/// A typical track record (about 250 bytes).
fn record(n: usize) -> Record {
    Record::from_json(format!(
        r#"{{"type":"event","identity":"user-{n}","ts":1700000000,"evtName":"Order Completed","evtData":{{"order_id":"o-{n}","revenue":42.5,"currency":"USD","coupon":"SUMMER","products":"3","source":"web","campaign":"spring-sale"}}}}"#
    ))
}

fn bench_upload(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let settings = DestinationSettings::from_json(
        r#"{"accountId":"ACC-BENCH","passcode":"pc-bench","region":"in1"}"#,
    )
    .expect("settings");
    let delivery = Delivery::new(
        InstantSuccess,
        DeliveryPolicy {
            endpoint_override: Some("http://bench".into()),
            ..DeliveryPolicy::default()
        },
    );
    let mut group = c.benchmark_group("delivery_upload");
    for events in [100usize, 1_000, 10_000] {
        let records: Vec<Vec<Record>> = (0..events).map(|n| vec![record(n)]).collect();
        let slices: Vec<&[Record]> = records.iter().map(Vec::as_slice).collect();
        group.throughput(Throughput::Elements(events as u64));
        group.bench_with_input(BenchmarkId::from_parameter(events), &slices, |b, slices| {
            b.iter(|| {
                let deadline = Instant::now() + Duration::from_secs(60);
                let report = rt.block_on(delivery.upload(&settings, slices, deadline));
                black_box(report)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_upload);
criterion_main!(benches);
