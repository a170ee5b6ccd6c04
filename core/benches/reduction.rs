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
use vigil_core::reduce::{GlucoseBand, Policy, ReducerConfig, RelativeChange, max_error, reduce};
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

/// The floor: the fewest readings any choice could keep under the same
/// rules (error bound, forced keeps, max_silence), by dynamic programming
/// over all segmentations. Offline and quadratic within a silence window,
/// so a yardstick for the online greedy reducer, not a replacement.
fn fewest_kept(samples: &[Sample], config: &ReducerConfig) -> usize {
    let n = samples.len();
    if n == 0 {
        return 0;
    }
    let secs = |a: &Sample, b: &Sample| (b.time - a.time).num_milliseconds() as f64 / 1e3;
    let silence = config.max_silence.num_milliseconds() as f64 / 1e3;
    let gap = config.gap_threshold();
    let mut forced = vec![false; n];
    forced[0] = true;
    forced[n - 1] = true;
    for i in 1..n {
        let (a, b) = (samples[i - 1], samples[i]);
        let band = config.glucose_bands && GlucoseBand::of(a.value) != GlucoseBand::of(b.value);
        if band || b.time - a.time > gap {
            forced[i - 1] = true;
            forced[i] = true;
        }
    }
    let tol = config.tolerance * (1.0 - 1e-9);
    let mut best = vec![usize::MAX; n];
    best[0] = 1;
    for i in 0..n {
        if best[i] == usize::MAX {
            continue;
        }
        let a = samples[i];
        let (mut lower, mut upper) = (f64::NEG_INFINITY, f64::INFINITY);
        for j in i + 1..n {
            let dt = secs(&a, &samples[j]);
            if j > i + 1 && dt > silence {
                break;
            }
            let v = samples[j].value;
            let slope = (v - a.value) / dt;
            if j == i + 1 || (lower <= slope && slope <= upper) {
                best[j] = best[j].min(best[i] + 1);
            }
            if forced[j] {
                break;
            }
            lower = lower.max((v - tol - a.value) / dt);
            upper = upper.min((v + tol - a.value) / dt);
            if lower > upper {
                break;
            }
        }
    }
    best[n - 1]
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
    let share = |k: usize| 100.0 * k as f64 / samples.len() as f64;
    let floor = match policy {
        Policy::BoundedError(config) => format!("{:.1} %", share(fewest_kept(samples, config))),
        Policy::RelativeChange(_) => "-".into(),
    };
    println!(
        "| {trace} | {policy_name} | {} | {:.1} % | {floor} | {error:.2} | {:.1} M/s |",
        samples.len(),
        share(kept.len()),
        rate / 1e6
    );
    Ok(())
}

fn main() -> Result<(), Failure> {
    let start: DateTime<Utc> =
        DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")?.with_timezone(&Utc);
    let relative = Policy::RelativeChange(RelativeChange::default());

    println!(
        "| trace | policy | readings | kept | fewest possible | worst error (mg/dL or bpm) | throughput (readings/s) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
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
