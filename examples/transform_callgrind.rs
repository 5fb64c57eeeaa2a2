//! Deterministic cost of the transform for `valgrind --tool=callgrind`: transforms (or scans)
//! the benchmark mix N times inside one `#[inline(never)]` function, so instruction counts can
//! be collected for that function alone and divided by the number of events. Wall-clock figures
//! on a shared machine swing 2x; instruction counts do not (BENCHMARKS.md).
//!
//! ```sh
//! cargo build --profile bench --example transform_callgrind
//! valgrind --tool=callgrind --toggle-collect='*measured*' \
//!     target/release/examples/transform_callgrind transform 10
//! ```

#[path = "../benches/support/mix.rs"]
mod mix;

use rudder_clevertap::settings::MappingOptions;
use rudder_clevertap::transform::{RecordBuf, transform_event_into};
use serde::de::IgnoredAny;
use std::hint::black_box;

#[inline(never)]
fn measured_transform(events: &[String], rounds: usize, opts: MappingOptions) -> usize {
    let mut n = 0;
    let mut buf = RecordBuf::default();
    for _ in 0..rounds {
        for e in events {
            buf.clear();
            if transform_event_into(black_box(e), opts, &mut buf)
                .result
                .records()
                .is_some()
            {
                n += buf.iter().map(str::len).sum::<usize>();
            }
        }
    }
    n
}

#[inline(never)]
fn measured_scan(events: &[String], rounds: usize) -> usize {
    let mut n = 0;
    for _ in 0..rounds {
        for e in events {
            n += usize::from(serde_json::from_str::<IgnoredAny>(black_box(e)).is_ok());
        }
    }
    n
}

#[inline(never)]
fn measured_value(events: &[String], rounds: usize) -> usize {
    let mut n = 0;
    for _ in 0..rounds {
        for e in events {
            let v: serde_json::Value = serde_json::from_str(black_box(e)).unwrap_or_default();
            n += serde_json::to_string(&v).map_or(0, |s| s.len());
        }
    }
    n
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "transform".to_owned());
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let events = mix::mix(600);
    let opts = MappingOptions {
        track_anonymous: true,
        enable_object_id_mapping: false,
        event_timestamp_as_ts: false,
    };
    let n = match mode.as_str() {
        "transform" => measured_transform(&events, rounds, opts),
        "scan" => measured_scan(&events, rounds),
        "value" => measured_value(&events, rounds),
        other => {
            eprintln!("unknown mode {other}: expected transform, scan or value");
            std::process::exit(2);
        }
    };
    println!("{mode}: {} events, result {n}", events.len() * rounds);
}
