//! Seeded sweep over random byte strings for the Glucose, Heart Rate, PLX
//! and Battery codecs.
//!
//! The in-module property tests prove `encode(decode(b)) == b` for whatever
//! decodes; this sweep makes sure that "whatever decodes" is not empty. Each
//! decoder gets many random values shaped like its characteristic (flags in
//! the defined range, a length near a real one), every accepted value must
//! re-encode to the same bytes, and a minimum share must be accepted so the
//! check cannot pass vacuously. Rejections must be typed errors, never
//! panics.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_core::codec::battery::BatteryLevel;
use vigil_core::codec::glucose::{GlucoseMeasurement, GlucoseMeasurementContext};
use vigil_core::codec::heart_rate::HeartRateMeasurement;
use vigil_core::codec::plx::PlxContinuousMeasurement;

const CASES: usize = 200_000;

/// Random bytes: `flags` from `flag_range`, then `min_len..=max_len` more.
fn sample(
    rng: &mut ChaCha8Rng,
    flags: std::ops::Range<u8>,
    min_len: usize,
    max_len: usize,
) -> Vec<u8> {
    let len = rng.random_range(min_len..=max_len);
    let mut bytes = Vec::with_capacity(len + 1);
    bytes.push(rng.random_range(flags));
    bytes.extend((0..len).map(|_| rng.random::<u8>()));
    bytes
}

/// Runs `CASES` samples through `roundtrip` (which returns `None` when the
/// decoder refused the input) and returns how many decoded.
fn sweep(
    seed: u64,
    gen_bytes: impl Fn(&mut ChaCha8Rng) -> Vec<u8>,
    roundtrip: impl Fn(&[u8]) -> Option<Vec<u8>>,
) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut accepted = 0;
    for _ in 0..CASES {
        let bytes = gen_bytes(&mut rng);
        if let Some(again) = roundtrip(&bytes) {
            assert_eq!(again, bytes, "re-encoding changed {bytes:02X?}");
            accepted += 1;
        }
    }
    println!("seed {seed}: {accepted} of {CASES} decoded and re-encoded exactly");
    accepted
}

#[test]
fn heart_rate_values_that_decode_reencode_exactly() {
    let ok = sweep(
        1,
        |rng| sample(rng, 0..0x20, 1, 12),
        |b| {
            HeartRateMeasurement::decode(b)
                .ok()
                .map(|m| m.encode().unwrap())
        },
    );
    assert!(ok > CASES / 10, "only {ok} decoded");
}

#[test]
fn glucose_measurements_that_decode_reencode_exactly() {
    // Sequence number and a plausible base time, then the optional fields.
    let ok = sweep(
        2,
        |rng| {
            let mut b = vec![rng.random_range(0..0x20u8)];
            b.extend(rng.random::<u16>().to_le_bytes());
            b.extend(rng.random_range(2000u16..2040).to_le_bytes());
            b.extend([
                rng.random_range(0..=12u8),
                rng.random_range(0..=28u8),
                rng.random_range(0..=23u8),
                rng.random_range(0..=59u8),
                rng.random_range(0..=59u8),
            ]);
            let len = rng.random_range(0..=7);
            b.extend((0..len).map(|_| rng.random::<u8>()));
            b
        },
        |b| {
            GlucoseMeasurement::decode(b)
                .ok()
                .map(|m| m.encode().unwrap())
        },
    );
    assert!(ok > CASES / 20, "only {ok} decoded");
}

#[test]
fn glucose_contexts_that_decode_reencode_exactly() {
    let ok = sweep(
        3,
        |rng| {
            let mut b = sample(rng, 0..0x80, 2, 16);
            // Half the time, set the extended-flags bit with a zero byte.
            if rng.random::<bool>() && b.len() > 3 {
                if let Some(f) = b.first_mut() {
                    *f |= 0x80;
                }
                if let Some(e) = b.get_mut(3) {
                    *e = 0;
                }
            }
            b
        },
        |b| {
            GlucoseMeasurementContext::decode(b)
                .ok()
                .map(|c| c.encode().unwrap())
        },
    );
    assert!(ok > CASES / 100, "only {ok} decoded");
}

#[test]
fn plx_values_that_decode_reencode_exactly() {
    let ok = sweep(
        4,
        |rng| sample(rng, 0..0x20, 4, 19),
        |b| PlxContinuousMeasurement::decode(b).ok().map(|m| m.encode()),
    );
    // Sixteen lengths for one right one, and random status bytes that are
    // often reserved: a low share, still thousands of accepted values.
    assert!(ok > CASES / 100, "only {ok} decoded");
}

#[test]
fn battery_levels_that_decode_reencode_exactly() {
    let ok = sweep(
        5,
        |rng| sample(rng, 0..255, 0, 1),
        |b| BatteryLevel::decode(b).ok().map(|l| l.encode().unwrap()),
    );
    // About 101/255 of the one-byte values are levels.
    assert!(ok > CASES / 10, "only {ok} decoded");
}
