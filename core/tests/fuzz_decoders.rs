//! Seeded fuzzing of every decoder, in the normal test run.
//!
//! Millions of inputs, deterministic for the seed: random byte strings of
//! every short length, and mutations (bit flips, byte changes, insertions,
//! deletions, truncations, duplications) of valid values, so the fuzzer
//! reaches deep into each format instead of failing on the flags byte.
//! A panic anywhere fails the test; each decoder must also both accept and
//! reject some inputs, which proves the mutations actually exercise it.
//! `core/fuzz/` runs the same decoders under libFuzzer for longer runs.

#![allow(clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_core::codec::racp::RacpService;
use vigil_core::codec::{DECODABLE, DecodeOptions, decode, uuid};

/// Valid values per characteristic, from the specifications' layouts.
fn seeds(characteristic: u16) -> Vec<Vec<u8>> {
    let hex = |s: &str| {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).expect("seed hex"))
            .collect::<Vec<u8>>()
    };
    let list: &[&str] = match characteristic {
        uuid::CGM_MEASUREMENT => &[
            "06 00 78 00 05 00",
            "0C 03 78 00 05 00 F6 FF 5A 00 B2 F6",
            "09 E0 78 00 05 00 01 02 04 06 00 7A 00 06 00",
        ],
        uuid::CGM_FEATURE => &["00 00 00 11 FF FF", "FF 0F 00 11 FF FF"],
        uuid::CGM_STATUS => &["05 00 00 00 00", "05 00 01 02 04"],
        uuid::CGM_SESSION_START_TIME => {
            &["E8 07 0B 19 0A 00 00 04 00", "E8 07 06 01 00 00 00 80 FF"]
        }
        uuid::CGM_SESSION_RUN_TIME => &["0E 01"],
        uuid::CGM_SPECIFIC_OPS_CONTROL_POINT => &["1A", "1B", "01 05", "1C 1A 01", "07 B4 00"],
        uuid::RECORD_ACCESS_CONTROL_POINT => &[
            "01 01",
            "03 00",
            "04 03 01 0A 00",
            "01 04 01 0A 00 14 00",
            "05 00 0A 00",
            "06 00 01 01",
        ],
        uuid::GLUCOSE_MEASUREMENT => &[
            "00 01 00 E8 07 0B 19 0A 00 00",
            "02 01 00 E8 07 0B 19 0A 00 00 78 B0 11",
            "1B 02 01 E8 07 03 0F 07 1E 00 05 00 78 B0 11 00 00",
        ],
        uuid::GLUCOSE_MEASUREMENT_CONTEXT => &["00 01 00", "03 01 00 01 32 B0 01"],
        uuid::HEART_RATE_MEASUREMENT => &["00 48", "1E 48 10 00 00 04 00 02", "01 48 00"],
        uuid::PLX_CONTINUOUS_MEASUREMENT => &[
            "00 62 00 48 00",
            "1F 62 00 48 00 61 00 47 00 60 00 46 00 00 00 00 00 00 0A 00",
        ],
        uuid::BATTERY_LEVEL => &["64", "00"],
        _ => &[],
    };
    list.iter().map(|s| hex(s)).collect()
}

fn mutate(rng: &mut ChaCha8Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..rng.random_range(1..=3) {
        let len = v.len();
        match rng.random_range(0..6) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                v[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                v[i] = rng.random();
            }
            2 => {
                let i = rng.random_range(0..=len);
                v.insert(i, rng.random());
            }
            3 if len > 0 => {
                v.remove(rng.random_range(0..len));
            }
            4 => v.truncate(rng.random_range(0..=len)),
            _ => {
                let copy = v.clone();
                v.extend_from_slice(&copy);
            }
        }
    }
    v
}

#[test]
fn no_decoder_panics_on_millions_of_random_and_mutated_inputs() {
    const PER_DECODER: usize = 200_000;
    let mut rng = ChaCha8Rng::seed_from_u64(0x5EED_2AA7);
    let mut total = 0usize;
    for characteristic in DECODABLE {
        let seeds = seeds(characteristic);
        assert!(!seeds.is_empty(), "no seeds for 0x{characteristic:04X}");
        for seed in &seeds {
            let decodes = [false, true].into_iter().any(|crc| {
                let opts = DecodeOptions {
                    e2e_crc: crc,
                    ..DecodeOptions::default()
                };
                decode(characteristic, seed, &opts).is_ok()
            });
            assert!(
                decodes,
                "seed {seed:02X?} of 0x{characteristic:04X} does not decode"
            );
        }
        let (mut accepted, mut rejected) = (0usize, 0usize);
        for i in 0..PER_DECODER {
            let input = if i % 4 == 0 {
                let len = rng.random_range(0..40);
                (0..len).map(|_| rng.random()).collect()
            } else {
                let seed = &seeds[rng.random_range(0..seeds.len())];
                mutate(&mut rng, seed)
            };
            let opts = DecodeOptions {
                e2e_crc: rng.random(),
                racp_service: if rng.random() {
                    RacpService::Cgm
                } else {
                    RacpService::Glucose
                },
            };
            match decode(characteristic, &input, &opts) {
                Ok(_) => accepted += 1,
                Err(e) => {
                    // Every error renders to one line naming what went wrong.
                    let text = e.to_string();
                    assert!(!text.is_empty() && !text.contains('\n'));
                    rejected += 1;
                }
            }
        }
        assert!(
            accepted > 0,
            "0x{characteristic:04X}: fuzzing never produced a valid input"
        );
        assert!(
            rejected > 0,
            "0x{characteristic:04X}: fuzzing never produced an invalid input"
        );
        total += accepted + rejected;
    }
    assert!(total >= 2_000_000, "fuzzed only {total} inputs");
}
