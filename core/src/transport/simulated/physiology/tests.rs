//! Behaviour of the physiology models: determinism, bounds, and traces whose
//! consensus metrics look like the patients they claim to be.

use chrono::{DateTime, TimeDelta, Utc};

use super::*;

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn fourteen_days(profile: GlucoseProfile, seed: u64) -> Vec<GlucosePoint> {
    let model = GlucoseModel::new(seed, profile, start(), SampleInterval::FiveMinutes).unwrap();
    model.take(14 * 288).collect()
}

struct Metrics {
    mean: f64,
    cv: f64,
    below54: f64,
    below70: f64,
    in_range: f64,
    above250: f64,
}

fn metrics(values: &[f64]) -> Metrics {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let frac = |f: &dyn Fn(f64) -> bool| values.iter().filter(|&&v| f(v)).count() as f64 / n;
    Metrics {
        mean,
        cv: var.sqrt() / mean,
        below54: frac(&|v| v < 54.0),
        below70: frac(&|v| v < 70.0),
        in_range: frac(&|v| (70.0..=180.0).contains(&v)),
        above250: frac(&|v| v > 250.0),
    }
}

#[test]
fn print_profile_metrics() {
    for profile in GlucoseProfile::all() {
        for seed in [1, 2, 3] {
            let name = profile.name;
            let points = fourteen_days(profile.clone(), seed);
            let s: Vec<f64> = points.iter().map(|p| p.sensor_mgdl).collect();
            let m = metrics(&s);
            let comp = points.iter().filter(|p| p.compression).count();
            println!(
                "{name} seed {seed}: mean {:.0} cv {:.1}% <54 {:.1}% <70 {:.1}% tir {:.1}% >250 {:.1}% comp {comp}",
                m.mean,
                m.cv * 100.0,
                m.below54 * 100.0,
                m.below70 * 100.0,
                m.in_range * 100.0,
                m.above250 * 100.0
            );
        }
    }
    let _ = TimeDelta::minutes(1);
}
