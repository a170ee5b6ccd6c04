//! `vigil decode` as a developer uses it: hex in, JSON records out, exit 2
//! with one line naming the field and offset on malformed input.

#![allow(clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::process::{Command, Output};

use serde_json::Value;

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .expect("run vigil")
}

fn records(args: &[&str]) -> Vec<Value> {
    let out = vigil(args);
    assert!(
        out.status.success(),
        "vigil {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).expect("stdout is JSON") {
        Value::Array(records) => records,
        other => panic!("expected a JSON array, got {other}"),
    }
}

fn malformed(args: &[&str]) -> String {
    let out = vigil(args);
    assert_eq!(out.status.code(), Some(2), "vigil {args:?} should exit 2");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout for malformed input"
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line on stderr: {err}"
    );
    err
}

#[test]
fn cgm_measurement_with_trend_quality_and_good_crc() {
    // Size 12, flags 0x03 (trend, quality), glucose 120, offset 5,
    // trend -1.0 (0xFFFF... as SFLOAT 0xFFF6 = -10 × 10^-1), quality 90, CRC.
    let r = records(&[
        "decode",
        "2AA7",
        "0C 03 78 00 05 00 F6 FF 5A 00 B2 F6",
        "--crc",
    ]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["glucose_mg_dl"], 120.0);
    assert_eq!(r[0]["time_offset_min"], 5);
    assert_eq!(r[0]["trend_mg_dl_per_min"], -1.0);
    assert_eq!(r[0]["quality_pct"], 90.0);
    assert_eq!(r[0]["crc_ok"], true);
}

#[test]
fn several_records_in_one_notification() {
    let r = records(&["decode", "2aa7", "06 00 78 00 05 00 06 00 7A 00 06 00"]);
    let offsets: Vec<_> = r.iter().map(|x| x["time_offset_min"].clone()).collect();
    assert_eq!(offsets, vec![Value::from(5), Value::from(6)]);
    assert_eq!(r[1]["glucose_mg_dl"], 122.0);
}

#[test]
fn special_sfloat_is_null_with_a_named_sibling() {
    let r = records(&[
        "decode",
        "2AA7",
        "060007FF0500".replace("07FF", "FF07").as_str(),
    ]);
    assert_eq!(r[0]["glucose_mg_dl"], Value::Null);
    assert_eq!(r[0]["glucose_mg_dl_special"], "NaN");
    let r = records(&["decode", "2AA7", "06 00 FE 07 05 00"]);
    assert_eq!(r[0]["glucose_mg_dl_special"], "+INF");
}

#[test]
fn bad_crc_is_rejected_naming_the_crc_field() {
    let err = malformed(&[
        "decode",
        "2AA7",
        "0C 03 78 00 05 00 F6 FF 5A 00 00 00",
        "--crc",
    ]);
    assert!(err.contains("e2e_crc") && err.contains("byte 10"), "{err}");
}

#[test]
fn truncated_input_names_field_and_offset() {
    let err = malformed(&["decode", "2A37", "10 48"]);
    assert!(err.contains("Heart Rate"), "{err}");
    assert!(err.contains("byte 2"), "{err}");
}

#[test]
fn heart_rate_with_rr_intervals_and_energy() {
    // Flags 0x1E: uint8 rate, contact detected, energy, RR intervals.
    let r = records(&["decode", "2A37", "1E 48 10 00 00 04 00 02"]);
    assert_eq!(r[0]["bpm"], 72);
    assert_eq!(r[0]["sensor_contact"], true);
    assert_eq!(r[0]["energy_expended_kj"], 16);
    assert_eq!(r[0]["rr_intervals_s"], serde_json::json!([1.0, 0.5]));
}

#[test]
fn glucose_measurement_in_kg_per_litre_becomes_exact_mg_dl() {
    let r = records(&["decode", "2A18", "02 01 00 E8 07 0B 19 0A 00 00 78 B0 11"]);
    assert_eq!(r[0]["glucose_mg_dl"], 120.0);
    assert_eq!(r[0]["sequence"], 1);
}

#[test]
fn pulse_oximeter_and_battery() {
    let r = records(&["decode", "2A5F", "00 62 00 48 00"]);
    assert_eq!(r[0]["spo2_pct"], 98.0);
    assert_eq!(r[0]["pulse_rate_bpm"], 72.0);
    let r = records(&["decode", "2A19", "5A"]);
    assert_eq!(r[0]["battery_pct"], 90);
    let err = malformed(&["decode", "2A19", "65"]);
    assert!(err.contains("reserved"), "{err}");
}

#[test]
fn control_points_decode_in_both_directions() {
    let r = records(&["decode", "2A52", "01 01"]);
    assert_eq!(r[0]["direction"], "request");
    let r = records(&["decode", "2A52", "05 00 0A 00"]);
    assert_eq!(r[0]["direction"], "response");
    assert_eq!(r[0]["operation"]["NumberOfStoredRecords"], 10);
    let r = records(&["decode", "2AAC", "1C 1A 01"]);
    assert_eq!(r[0]["direction"], "response");
}

#[test]
fn unknown_characteristic_and_bad_hex_are_input_errors() {
    malformed(&["decode", "2A00", "00"]);
    malformed(&["decode", "2AA7", "0G"]);
    malformed(&["decode", "2AA7", "123"]);
    malformed(&["decode", "XYZ", "00"]);
}
