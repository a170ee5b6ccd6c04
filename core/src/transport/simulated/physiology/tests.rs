//! Behaviour of the physiology models: determinism, bounds, and traces whose
//! consensus metrics look like the patients they claim to be.

use chrono::{DateTime, Utc};

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
fn the_same_seed_gives_the_same_trace_and_another_seed_another() {
    let profile = GlucoseProfile::poorly_controlled_type1();
    let a = fourteen_days(profile.clone(), 42);
    let b = fourteen_days(profile.clone(), 42);
    let c = fourteen_days(profile, 43);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let heart = |seed| {
        HeartModel::new(seed, HeartProfile::adult(), start())
            .unwrap()
            .take(3_600)
            .collect::<Vec<_>>()
    };
    assert_eq!(heart(5), heart(5));
    assert_ne!(heart(5), heart(6));
}

#[test]
fn sensor_readings_stay_within_what_a_cgm_reports() {
    for profile in GlucoseProfile::all() {
        for p in fourteen_days(profile, 9) {
            assert!((40.0..=400.0).contains(&p.sensor_mgdl), "{}", p.sensor_mgdl);
            assert_eq!(p.sensor_mgdl, p.sensor_mgdl.round());
            assert!((20.0..=600.0).contains(&p.blood_mgdl));
        }
    }
}

#[test]
fn readings_come_at_the_configured_interval() {
    for interval in [SampleInterval::OneMinute, SampleInterval::FiveMinutes] {
        let mut model = GlucoseModel::new(1, GlucoseProfile::type2(), start(), interval).unwrap();
        let samples = model.sensor_samples(10);
        assert_eq!(samples[0].time, start());
        for w in samples.windows(2) {
            assert_eq!(w[1].time - w[0].time, interval.duration());
        }
    }
}

#[test]
fn interstitial_glucose_lags_blood_glucose_by_minutes() {
    let mut profile = GlucoseProfile::well_controlled_type1();
    profile.noise_sd_mgdl = 0.0;
    profile.compression_p = 0.0;
    let mut model = GlucoseModel::new(3, profile, start(), SampleInterval::OneMinute).unwrap();
    let points: Vec<GlucosePoint> = model.by_ref().take(3 * 1440).collect();
    let blood: Vec<f64> = points.iter().map(|p| p.blood_mgdl).collect();
    let inter: Vec<f64> = points.iter().map(|p| p.interstitial_mgdl).collect();
    // The shift that best aligns interstitial with blood is the lag.
    let misfit = |lag: usize| -> f64 {
        (lag..blood.len())
            .map(|i| (inter[i] - blood[i - lag]).powi(2))
            .sum()
    };
    let best = (0..30)
        .min_by(|&a, &b| misfit(a).total_cmp(&misfit(b)))
        .unwrap();
    assert!((5..=10).contains(&best), "lag {best} min");
}

#[test]
fn sensor_error_is_smooth_not_white() {
    let mut profile = GlucoseProfile::type2();
    profile.compression_p = 0.0;
    let points = fourteen_days(profile, 4);
    let err: Vec<f64> = points
        .iter()
        .map(|p| p.sensor_mgdl - p.interstitial_mgdl)
        .collect();
    let mean = err.iter().sum::<f64>() / err.len() as f64;
    let var: f64 = err.iter().map(|e| (e - mean).powi(2)).sum();
    let lag1: f64 = err.windows(2).map(|w| (w[0] - mean) * (w[1] - mean)).sum();
    assert!(lag1 / var > 0.7, "lag-1 autocorrelation {}", lag1 / var);
}

#[test]
fn compression_lows_happen_at_night_and_pull_the_sensor_down() {
    let mut profile = GlucoseProfile::well_controlled_type1();
    profile.compression_p = 1.0;
    let points = fourteen_days(profile, 11);
    let compressed: Vec<&GlucosePoint> = points.iter().filter(|p| p.compression).collect();
    assert!(compressed.len() >= 14, "one per night");
    for p in &compressed {
        use chrono::Timelike;
        assert!(p.time.hour() < 7, "at night: {}", p.time);
    }
    let deepest = compressed
        .iter()
        .map(|p| p.interstitial_mgdl - p.sensor_mgdl)
        .fold(0.0, f64::max);
    assert!(deepest > 20.0, "artefact depth {deepest}");
}

#[test]
fn named_profiles_have_plausible_consensus_metrics() {
    // Seeds differ from print_profile_metrics's on purpose: plausibility
    // must not hinge on one trace.
    for seed in [21, 22] {
        let sensor = |p: GlucoseProfile| -> Vec<f64> {
            fourteen_days(p, seed)
                .iter()
                .map(|p| p.sensor_mgdl)
                .collect()
        };
        let well = metrics(&sensor(GlucoseProfile::well_controlled_type1()));
        assert!(well.in_range > 0.70 && well.cv < 0.36 && well.below54 < 0.01);
        assert!((110.0..160.0).contains(&well.mean));
        let poor = metrics(&sensor(GlucoseProfile::poorly_controlled_type1()));
        assert!(poor.in_range < 0.70 && poor.below70 > 0.04 && poor.cv > 0.36);
        assert!(poor.above250 > 0.05);
        let t2 = metrics(&sensor(GlucoseProfile::type2()));
        assert!(t2.below70 < 0.01 && (140.0..200.0).contains(&t2.mean));
    }
}

#[test]
fn heart_rate_follows_activity_and_rr_intervals_match_it() {
    let model = HeartModel::new(2, HeartProfile::adult(), start()).unwrap();
    let day: Vec<HeartPoint> = model.take(86_400).collect();
    let mean_of = |a: Activity| {
        let v: Vec<f64> = day
            .iter()
            .filter(|p| p.activity == a)
            .map(|p| p.reported_bpm)
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    assert!(mean_of(Activity::Sleep) < mean_of(Activity::Rest));
    assert!(mean_of(Activity::Rest) < mean_of(Activity::Walking));
    let beats: usize = day.iter().map(|p| p.rr_intervals.len()).sum();
    let rr_sum: f64 = day.iter().flat_map(|p| p.rr_intervals.iter()).sum();
    // The RR intervals tile the day.
    assert!((rr_sum - 86_399.0).abs() < 3.0, "{rr_sum}");
    assert!(beats > 80_000);
    // Beat-to-beat variability exists (RMSSD of a resting adult: 20-80 ms).
    let rr: Vec<f64> = day
        .iter()
        .filter(|p| p.activity == Activity::Rest)
        .flat_map(|p| p.rr_intervals.iter().copied())
        .collect();
    let rmssd =
        (rr.windows(2).map(|w| (w[1] - w[0]).powi(2)).sum::<f64>() / (rr.len() - 1) as f64).sqrt();
    assert!((0.01..0.1).contains(&rmssd), "RMSSD {rmssd}");
}
