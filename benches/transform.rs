//! Throughput of the pure transform (event bytes -> serialized CleverTap records) on a realistic
//! mix, beside two serde_json baselines over the same bytes: a `Value` parse + serialize round
//! trip, and an `IgnoredAny` scan (the floor for anything that reads every byte).
//! Run: `cargo bench --bench transform -- --measurement-time 3` (figures in BENCHMARKS.md).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rudder_clevertap::settings::MappingOptions;
use rudder_clevertap::transform::{transform_event, upload_body};
use serde::de::IgnoredAny;
use std::hint::black_box;

/// A typical web SDK `context`.
const CONTEXT: &str = r#"{"library":{"name":"RudderLabs JavaScript SDK","version":"3.0.3"},"locale":"en-GB","ip":"203.0.113.7","userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36","page":{"path":"/pricing","referrer":"https://www.google.com/","title":"Pricing","url":"https://shop.example.com/pricing"},"campaign":{"source":"newsletter","medium":"email"}}"#;

fn envelope(kind: &str, i: usize, body: &str) -> String {
    format!(
        r#"{{"type":"{kind}","messageId":"m-{kind}-{i:06}","anonymousId":"a-7f3c9e2b-{i:06}","userId":"u-{i:06}","channel":"web","originalTimestamp":"2024-03-05T10:20:30.123Z","sentAt":"2024-03-05T10:20:30.456Z","context":{CONTEXT},{body},"integrations":{{"All":true}}}}"#
    )
}

fn mix(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 6 {
            0 => envelope("identify", i, r#""traits":{"email":"ana@example.com","name":"Ana Lima","phone":"+5511999990000","gender":"female","birthday":"1990-04-01","plan":"pro","seats":12,"address":{"city":"Pune","zip":"411001"},"MSG-email":true}"#),
            1 => envelope("track", i, r#""event":"Plan Upgraded","properties":{"from":"basic","to":"pro","price":19.99,"annual":false,"coupon":null,"tags":["a","b"]}"#),
            2 => envelope("page", i, r#""name":"Pricing","properties":{"path":"/pricing","title":"Pricing - Example","referrer":"https://www.google.com/","url":"https://shop.example.com/pricing"}"#),
            3 => envelope("screen", i, r#""name":"Checkout","properties":{"step":2,"cart_value":42.5}"#),
            4 => envelope("track", i, r#""event":"Order Completed","properties":{"checkout_id":"chk-77","order_id":"ord-77","revenue":42.5,"currency":"EUR","coupon":"SPRING","products":[{"product_id":"p1","name":"Kettle","price":30,"quantity":1},{"product_id":"p2","name":"Mug","price":6.25,"quantity":2},{"product_id":"p3","name":"Tea","price":4.5,"quantity":3}]}"#),
            _ => envelope("alias", i, r#""previousId":"a-old-000001""#),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let events = mix(600);
    let bytes: usize = events.iter().map(String::len).sum();
    eprintln!(
        "mix: {} events, {} bytes on average",
        events.len(),
        bytes / events.len()
    );
    let opts = MappingOptions {
        track_anonymous: true,
        enable_object_id_mapping: false,
    };
    for e in &events {
        assert!(transform_event(e, opts).result.is_ok(), "{e}");
    }
    let mut group = c.benchmark_group("events");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("transform", |b| {
        b.iter(|| {
            let mut n = 0;
            for e in &events {
                if let Ok(records) = transform_event(black_box(e), opts).result {
                    n += records.len();
                }
            }
            black_box(n)
        })
    });
    group.bench_function("transform_and_upload_body", |b| {
        b.iter(|| {
            let all: Vec<_> = events
                .iter()
                .filter_map(|e| transform_event(black_box(e), opts).result.ok())
                .flatten()
                .collect();
            black_box(upload_body(all.iter()).len())
        })
    });
    group.bench_function("serde_json_value_roundtrip", |b| {
        b.iter(|| {
            let mut n = 0;
            for e in &events {
                let v: serde_json::Value = serde_json::from_str(black_box(e)).unwrap_or_default();
                n += serde_json::to_string(&v).map_or(0, |s| s.len());
            }
            black_box(n)
        })
    });
    group.bench_function("serde_json_ignored_any_scan", |b| {
        b.iter(|| {
            for e in &events {
                black_box(serde_json::from_str::<IgnoredAny>(black_box(e)).is_ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
