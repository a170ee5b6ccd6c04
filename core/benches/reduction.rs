//! Reduction benchmark: the bounded-error reducer against the classic
//! relative-change rule on the same physiology traces, as a markdown table
//! for bench/RESULTS.md, plus how fast the physiology simulates a day.
//!
//! Plain `Instant` timing rather than criterion: the point is the table
//! (kept share and worst error, which are exact), and throughput only needs
//! to show the order of magnitude; each figure is the best of a few runs.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use vigil_core::model::Sample;
use vigil_core::reduce::{Policy, ReducerConfig, RelativeChange, max_error, reduce};
use vigil_core::transport::simulated::physiology::{
    GlucoseModel, GlucoseProfile, HeartModel, HeartProfile, SampleInterval,
};

type Failure = Box<dyn std::error::Error>;

const SEED: u64 = 7;

/// Best wall time of `f` over at least three runs and 0.3 s.
fn best_of(mut f: impl FnMut() -> Result<(), Failure>) -> Result<Duration, Failure> {
    let begin = Instant::now();
    let mut best = Duration::MAX;
    let mut runs = 0;
    while runs < 3 || begin.elapsed() < Duration::from_millis(300) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed());
        runs += 1;
    }
    Ok(best)
}

fn row(trace: &str, policy_name: &str, samples: &[Sample], policy: &Policy) -> Result<(), Failure> {
    let kept = reduce(samples, &[], policy)?;
    let kept_samples: Vec<Sample> = kept
        .iter()
        .filter_map(|&i| samples.get(i).copied())
        .collect();
    let error =
        max_error(samples, &kept_samples).ok_or("reconstruction does not cover the trace")?;
    let time = best_of(|| {
        std::hint::black_box(reduce(std::hint::black_box(samples), &[], policy)?);
        Ok(())
    })?;
    let rate = samples.len() as f64 / time.as_secs_f64();
    println!(
        "| {trace} | {policy_name} | {} | {:.1} % | {error:.2} | {:.1} M/s |",
        samples.len(),
        100.0 * kept.len() as f64 / samples.len() as f64,
        rate / 1e6
    );
    Ok(())
}

fn main() -> Result<(), Failure> {
    let start: DateTime<Utc> =
        DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")?.with_timezone(&Utc);
    let relative = Policy::RelativeChange(RelativeChange::default());

    println!("| trace | policy | readings | kept | worst error | throughput |");
    println!("|---|---|---:|---:|---:|---:|");
    for profile in GlucoseProfile::all() {
        for (interval, per_day) in [
            (SampleInterval::FiveMinutes, 288),
            (SampleInterval::OneMinute, 1440),
        ] {
            let mut model = GlucoseModel::new(SEED, profile.clone(), start, interval)?;
            let samples = model.sensor_samples(14 * per_day);
            let name = format!("{} CGM {}-min 14 d", profile.name, interval.minutes());
            let bounded = Policy::BoundedError(ReducerConfig::glucose(interval.duration()));
            row(&name, "bounded 3 mg/dL", &samples, &bounded)?;
            row(&name, "relative 10 %", &samples, &relative)?;
        }
    }
    for profile in HeartProfile::all() {
        let mut model = HeartModel::new(SEED, profile.clone(), start)?;
        let samples = model.reported_samples(86_400);
        let name = format!("{} strap HR 1 Hz 1 d", profile.name);
        row(
            &name,
            "bounded 2 bpm",
            &samples,
            &Policy::BoundedError(ReducerConfig::heart_rate()),
        )?;
        row(&name, "relative 10 %", &samples, &relative)?;
    }

    println!();
    println!("| simulation | one simulated day (CPU, best run) |");
    println!("|---|---:|");
    for profile in GlucoseProfile::all() {
        let time = best_of(|| {
            let mut model =
                GlucoseModel::new(SEED, profile.clone(), start, SampleInterval::OneMinute)?;
            std::hint::black_box(model.sensor_samples(1440));
            Ok(())
        })?;
        println!(
            "| glucose {} (1-min steps) | {:.2} ms |",
            profile.name,
            time.as_secs_f64() * 1e3
        );
    }
    let time = best_of(|| {
        let mut model = HeartModel::new(SEED, HeartProfile::adult(), start)?;
        std::hint::black_box(model.reported_samples(86_400));
        Ok(())
    })?;
    println!(
        "| heart adult (1 Hz, with RR intervals) | {:.2} ms |",
        time.as_secs_f64() * 1e3
    );

    println!();
    println!(
        "| profile (seed {SEED}, 14 d, 5-min sensor) | mean | CV | < 54 | < 70 | 70-180 | > 250 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for profile in GlucoseProfile::all() {
        let mut model =
            GlucoseModel::new(SEED, profile.clone(), start, SampleInterval::FiveMinutes)?;
        let v: Vec<f64> = model
            .sensor_samples(14 * 288)
            .iter()
            .map(|s| s.value)
            .collect();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let pct = |f: &dyn Fn(f64) -> bool| 100.0 * v.iter().filter(|&&x| f(x)).count() as f64 / n;
        println!(
            "| {} | {mean:.0} | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {:.1} % |",
            profile.name,
            100.0 * sd / mean,
            pct(&|x| x < 54.0),
            pct(&|x| x < 70.0),
            pct(&|x| (70.0..=180.0).contains(&x)),
            pct(&|x| x > 250.0),
        );
    }
    Ok(())
}
