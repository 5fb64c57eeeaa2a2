//! Throughput of the pure transform (event bytes -> serialized CleverTap records) on a realistic
//! mix, beside two serde_json baselines over the same bytes: a `Value` parse + serialize round
//! trip, and an `IgnoredAny` scan (the floor for anything that reads every byte).
//! Run: `cargo bench --bench transform -- --measurement-time 3` (figures in BENCHMARKS.md).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rudder_clevertap::settings::{DestinationSettings, MappingOptions};
use rudder_clevertap::transform::{
    Mapped, RecordBuf, transform_event, transform_event_into, upload_body,
};
use serde::de::IgnoredAny;
use std::hint::black_box;

#[path = "support/mix.rs"]
mod mix;
use mix::mix;

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
        event_timestamp_as_ts: false,
    };
    for e in &events {
        assert!(transform_event(e, opts).result.records().is_some(), "{e}");
    }
    // The same events for a destination with consent and event filter settings (none of the
    // mix's events is filtered: what the filters cost on the hot path).
    let filtering = DestinationSettings::from_json(
        r#"{"accountId":"A","passcode":"p","trackAnonymous":true,
        "oneTrustCookieCategories":[{"oneTrustCookieCategory":"C0004"}],
        "eventFilteringOption":"blacklistedEvents","blacklistedEvents":[{"eventName":"Never Sent"}]}"#,
    )
    .expect("valid settings");
    for e in &events {
        assert!(
            transform_event(e, &filtering).result.records().is_some(),
            "{e}"
        );
    }
    let mut group = c.benchmark_group("events");
    group.throughput(Throughput::Elements(events.len() as u64));
    // What the `transform` command does per event: records appended to a reused buffer.
    let mut buf = RecordBuf::default();
    group.bench_function("transform", |b| {
        b.iter(|| {
            let mut n = 0;
            for e in &events {
                buf.clear();
                if let Mapped::Records(records) =
                    transform_event_into(black_box(e), opts, &mut buf).result
                {
                    n += records;
                }
            }
            black_box((n, buf.iter().map(str::len).sum::<usize>()))
        })
    });
    // The same, for the destination with consent and event filter settings.
    group.bench_function("transform_with_filters", |b| {
        b.iter(|| {
            let mut n = 0;
            for e in &events {
                buf.clear();
                if let Mapped::Records(records) =
                    transform_event_into(black_box(e), &filtering, &mut buf).result
                {
                    n += records;
                }
            }
            black_box((n, buf.iter().map(str::len).sum::<usize>()))
        })
    });
    // The `Vec<Record>` API the Lambda uses.
    group.bench_function("transform_event_vec", |b| {
        b.iter(|| {
            let mut n = 0;
            for e in &events {
                if let Mapped::Records(records) = transform_event(black_box(e), opts).result {
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
                .filter_map(|e| transform_event(black_box(e), opts).result.into_records())
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
