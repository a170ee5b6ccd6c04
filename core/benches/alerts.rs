//! Cost of the alert engine per raw reading, against a floor in the same
//! run: a loop that only touches each reading (what any consumer pays).
//!
//! The trace is 14 days of 5-minute readings swinging 40..320 mg/dL, so every
//! glucose rule starts, re-alerts and ends many times, plus a 40-minute
//! signal gap each day.

// criterion_group! generates a public function that cannot carry a doc.
#![allow(missing_docs)]

use std::hint::black_box;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_core::alerts::{AlertConfig, AlertEngine};
use vigil_core::model::Sample;

fn trace() -> Vec<Sample> {
    let t0 = DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    (0..14 * 288)
        .filter(|i| i % 288 < 100 || i % 288 >= 107)
        .map(|i: i64| Sample {
            time: t0 + TimeDelta::minutes(5 * i),
            value: 180.0 + 140.0 * (i as f64 * std::f64::consts::TAU / 96.0).sin(),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let trace = trace();
    let mut g = c.benchmark_group("alerts");
    g.throughput(Throughput::Elements(trace.len() as u64));
    g.bench_function("floor_touch_each_reading", |b| {
        b.iter(|| {
            let mut low = f64::MAX;
            for s in black_box(&trace) {
                low = low.min(s.value);
            }
            low
        })
    });
    g.bench_function("engine_on_glucose_14_days", |b| {
        b.iter(|| {
            let Ok(mut e) = AlertEngine::new(AlertConfig::default(), "bench") else {
                return 0;
            };
            let mut n = 0;
            for s in black_box(&trace) {
                n += e.on_glucose(*s).map(|ev| ev.len()).unwrap_or(0);
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
