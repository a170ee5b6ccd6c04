//! Decode throughput, records per second, for the two hottest
//! characteristics: CGM Measurement with E2E-CRC (one record per
//! notification, and four back to back as after a RACP backfill) and Heart
//! Rate Measurement with RR intervals (1 Hz straps). The floor in the same
//! run is the CRC alone over the same bytes: decoding costs that plus field
//! parsing.
//!
//! Run: `cargo bench -p vigil-core --bench decode`.

// criterion_group! generates a public function that cannot carry a doc.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_core::codec::SFloat;
use vigil_core::codec::cgm::CgmMeasurement;
use vigil_core::codec::crc::e2e_crc;
use vigil_core::codec::heart_rate::{HeartRateFormat, HeartRateMeasurement, SensorContact};

fn cgm_record(offset: u16, mg_dl: i32) -> CgmMeasurement {
    CgmMeasurement {
        glucose: SFloat::new(mg_dl, 0).unwrap_or(SFloat::NAN),
        time_offset_min: offset,
        status: None,
        cal_temp: None,
        warning: None,
        trend: SFloat::new(-12, -1),
        quality: SFloat::new(95, 0),
        crc: Some(0),
    }
}

fn bench(c: &mut Criterion) {
    let one = cgm_record(42, 123).encode();
    let four: Vec<CgmMeasurement> = (0..4)
        .map(|i| cgm_record(100 + i, 120 + i32::from(i)))
        .collect();
    let four = CgmMeasurement::encode_notification(&four);
    let hr = HeartRateMeasurement {
        format: HeartRateFormat::Uint8,
        bpm: 72,
        sensor_contact: SensorContact::Detected,
        energy_expended_kj: None,
        rr_intervals: vec![850, 860, 845, 870],
    }
    .encode()
    .unwrap_or_default();

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("cgm_measurement_crc/1_record", |b| {
        b.iter(|| CgmMeasurement::decode_notification(black_box(&one), true))
    });
    g.bench_function("floor: e2e_crc only/1_record", |b| {
        b.iter(|| e2e_crc(black_box(&one[..one.len() - 2])))
    });
    g.bench_function("heart_rate_rr/4_rr", |b| {
        b.iter(|| HeartRateMeasurement::decode(black_box(&hr)))
    });
    g.throughput(Throughput::Elements(4));
    g.bench_function("cgm_measurement_crc/4_records", |b| {
        b.iter(|| CgmMeasurement::decode_notification(black_box(&four), true))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
