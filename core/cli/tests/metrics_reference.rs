//! The SDK's consensus metrics held against a reference implementation
//! written independently from the published formulas
//! (`bench/metrics_reference.py`, exact rational arithmetic, no shared
//! code): on 14 days of each simulated patient, on traces with gaps, and on
//! hand-made band edges. Both the core's full-precision figures and what
//! `vigil metrics` prints are compared.
//!
//! `cargo test -p vigil-cli --test metrics_reference -- --nocapture` prints
//! the largest difference seen per metric (the figures in
//! `bench/RESULTS.md`).

#![allow(clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::Value;
use vigil_core::metrics::consensus_metrics;
use vigil_core::model::Sample;
use vigil_core::transport::simulated::physiology::{GlucoseModel, GlucoseProfile, SampleInterval};

const FIVE: TimeDelta = TimeDelta::minutes(5);

/// Keys whose values must agree exactly (counts, flags, the zone letter).
const EXACT: [&str; 5] = [
    "gri_zone",
    "days_with_data",
    "enough_days",
    "enough_wear",
    "readings",
];

/// Keys compared as numbers.
const NUMERIC: [&str; 15] = [
    "mean_mg_dl",
    "sd_mg_dl",
    "cv_pct",
    "gmi_pct",
    "tbr_lt54_pct",
    "tbr_lt70_pct",
    "tir_70_180_pct",
    "titr_70_140_pct",
    "tar_gt180_pct",
    "tar_gt250_pct",
    "gri",
    "gri_hypo",
    "gri_hyper",
    "active_pct",
    "days",
];

/// The core's figures may differ from the exact reference only by float
/// rounding; every figure here is at most a few hundred, so 1e-9 is far
/// above rounding and far below anything a report shows.
const FULL_PRECISION_TOLERANCE: f64 = 1e-9;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
        .expect("valid time")
        .with_timezone(&Utc)
}

fn simulated(profile: GlucoseProfile, seed: u64) -> Vec<Sample> {
    GlucoseModel::new(seed, profile, t0(), SampleInterval::FiveMinutes)
        .expect("named profiles are valid")
        .sensor_samples(14 * 288)
}

fn at(minutes: i64, values: &[f64]) -> Vec<Sample> {
    values
        .iter()
        .enumerate()
        .map(|(i, &value)| Sample {
            time: t0() + TimeDelta::minutes(minutes) + FIVE * i as i32,
            value,
        })
        .collect()
}

/// Every trace compared, by name.
fn cases() -> Vec<(String, Vec<Sample>)> {
    let mut cases = Vec::new();
    for profile in GlucoseProfile::all() {
        let name = profile.name;
        cases.push((format!("{name} 14 d"), simulated(profile, 7)));
    }
    // The poorly controlled patient with realistic holes: a 3-hour signal
    // loss every day and two days without a sensor.
    let holes: Vec<Sample> = simulated(GlucoseProfile::poorly_controlled_type1(), 8)
        .into_iter()
        .filter(|s| {
            let since = s.time - t0();
            let hour = since.num_hours() % 24;
            let day = since.num_days();
            !(2..5).contains(&hour) && day != 4 && day != 9
        })
        .collect();
    cases.push(("t1-poorly-controlled with gaps".into(), holes));
    // Two of every three slots (66.7 % wear) over 13 days.
    let sparse: Vec<Sample> = simulated(GlucoseProfile::type2(), 9)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i < 13 * 288 && i % 3 != 2)
        .map(|(_, s)| s)
        .collect();
    cases.push(("t2-oral sparse 13 d".into(), sparse));
    // Every band edge the consensus and the GRI name, and the values just
    // beside them.
    cases.push((
        "band edges".into(),
        at(
            0,
            &[
                53.9, 54.0, 69.0, 69.5, 70.0, 140.0, 140.5, 180.0, 180.5, 250.0, 250.5,
            ],
        ),
    ));
    cases.push(("a single reading".into(), at(0, &[69.5])));
    cases.push(("two readings".into(), at(0, &[54.0, 250.0])));
    // A reading 40 s late and a duplicate; then a 2-hour gap; then a day
    // and a half of nothing before the last readings.
    let mut jitter = at(0, &[70.0, 140.0, 180.0, 180.0]);
    jitter.push(Sample {
        time: t0() + TimeDelta::seconds(5 * 60 + 40),
        value: 141.0,
    });
    jitter.push(jitter[1]);
    jitter.extend(at(135, &[55.0, 60.0, 65.0]));
    jitter.extend(at(36 * 60 + 150, &[251.0, 300.0]));
    cases.push(("jitter, duplicate and gaps".into(), jitter));
    // Exactly 70 % wear: 14 of 20 slots, the first and the last included.
    let seventy: Vec<Sample> = (0..20)
        .filter(|i| i % 10 < 6 || i % 10 == 9)
        .map(|i| Sample {
            time: t0() + FIVE * i,
            value: 100.0,
        })
        .collect();
    cases.push(("exactly 70 % wear".into(), seventy));
    // Exactly 14 days of data, and 5 minutes less.
    cases.push(("exactly 14 days".into(), at(0, &[120.0; 14 * 288])));
    cases.push((
        "14 days less one slot".into(),
        at(0, &[120.0; 14 * 288 - 1]),
    ));
    // GRI on zone edges: 20 and 40 exactly (High 25 % = GRI 20; High 50 %
    // = GRI 40), and a GRI that the cap holds at 100.
    cases.push((
        "GRI exactly 20".into(),
        at(0, &[200.0, 100.0, 100.0, 100.0]),
    ));
    cases.push(("GRI exactly 40".into(), at(0, &[200.0, 100.0])));
    cases.push(("GRI capped".into(), at(0, &[40.0, 45.0, 300.0])));
    cases
}

fn write_csv(dir: &Path, name: &str, samples: &[Sample]) -> PathBuf {
    let path = dir.join(format!("{}.csv", name.replace([' ', '%', ','], "_")));
    let mut text = String::from("time,glucose_mgdl\n");
    for s in samples {
        text.push_str(&format!(
            "{},{}\n",
            s.time.to_rfc3339_opts(SecondsFormat::Millis, true),
            s.value
        ));
    }
    std::fs::write(&path, text).expect("write trace");
    path
}

fn reference(csv: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/metrics_reference.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(csv)
        .output()
        .expect("python3 runs (xtask/test.sh requires it)");
    assert!(
        out.status.success(),
        "reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("reference prints JSON")
}

fn cli(csv: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("metrics")
        .arg("--input")
        .arg(csv)
        .output()
        .expect("run vigil");
    assert!(
        out.status.success(),
        "vigil metrics failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("vigil metrics prints JSON")
}

fn number(v: &Value, key: &str, who: &str) -> f64 {
    v.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{who} has no number `{key}`: {v}"))
}

#[test]
fn sdk_metrics_agree_with_the_independent_reference() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut worst: BTreeMap<&str, f64> = NUMERIC.iter().map(|k| (*k, 0.0)).collect();
    let mut cli_worst = 0.0_f64;
    let cases = cases();
    for (name, samples) in &cases {
        let csv = write_csv(dir.path(), name, samples);
        let want = reference(&csv);
        let core = serde_json::to_value(consensus_metrics(samples, FIVE).expect("metrics"))
            .expect("metrics serialise");
        let printed = cli(&csv);
        for key in EXACT {
            assert_eq!(core.get(key), want.get(key), "{name}: core `{key}`");
            assert_eq!(printed.get(key), want.get(key), "{name}: CLI `{key}`");
        }
        for key in NUMERIC {
            let exact = number(&want, key, "reference");
            let diff = (number(&core, key, "core") - exact).abs();
            assert!(
                diff <= FULL_PRECISION_TOLERANCE,
                "{name}: core `{key}` is off the reference {exact} by {diff}"
            );
            let w = worst.entry(key).or_insert(0.0);
            *w = w.max(diff);
            // The CLI prints two decimals: within half a hundredth (and a
            // hair for the float behind the printed decimal).
            let printed_diff = (number(&printed, key, "CLI") - exact).abs();
            assert!(
                printed_diff <= 0.005 + 1e-9,
                "{name}: CLI `{key}` is off the reference {exact} by {printed_diff}"
            );
            cli_worst = cli_worst.max(printed_diff);
        }
    }
    println!(
        "{} traces; largest |core - reference| per metric:",
        cases.len()
    );
    for (key, diff) in &worst {
        println!("  {key:16} {diff:.1e}");
    }
    println!("largest |CLI (2 decimals) - reference|: {cli_worst:.4}");
}

#[test]
fn reference_cases_cover_every_zone_flag_and_band() {
    // The comparison above proves agreement only where the traces reach:
    // they must hold every GRI zone boundary tested, both values of each
    // sufficiency flag, and readings in all five bands.
    let all: Vec<_> = cases()
        .into_iter()
        .map(|(_, s)| consensus_metrics(&s, FIVE).expect("metrics"))
        .collect();
    use vigil_core::metrics::GriZone;
    for zone in [GriZone::A, GriZone::B, GriZone::E] {
        assert!(all.iter().any(|m| m.gri_zone == zone), "{zone:?}");
    }
    assert!(all.iter().any(|m| m.enough_days) && all.iter().any(|m| !m.enough_days));
    assert!(all.iter().any(|m| m.enough_wear) && all.iter().any(|m| !m.enough_wear));
    assert!(all.iter().any(|m| m.tbr_lt54_pct > 0.0));
    assert!(all.iter().any(|m| m.tar_gt250_pct > 0.0));
    assert!(all.iter().any(|m| m.titr_70_140_pct > 0.0));
}
