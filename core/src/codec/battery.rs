//! Battery Level (0x2A19) of the Battery Service.
//!
//! Read or notified by every kind of device Vigil talks to; the session turns
//! it into a `Battery` record reading and the alert rules watch it for a dying
//! sensor. The value is one `uint8` percent; the Battery Service (BAS 1.0,
//! §3.1 "Battery Level") defines 0..=100 and reserves 101..=255, which we
//! refuse rather than clamp: a battery at "200 %" is a broken device, not a
//! full one.

use super::bytes::{Reader, Writer};
use crate::{Error, Result};

const CHARACTERISTIC: &str = "Battery Level";

/// Highest level the specification defines.
pub const MAX_PERCENT: u8 = 100;

/// A battery level in percent, guaranteed 0..=100 when it came from
/// [`BatteryLevel::decode`].
#[derive(Debug, serde::Serialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatteryLevel {
    /// Remaining charge, percent of full (0..=100).
    pub percent: u8,
}

impl BatteryLevel {
    /// Decodes one Battery Level value: exactly one byte, 0..=100.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(CHARACTERISTIC, bytes);
        let percent = r.u8("battery_level")?;
        if percent > MAX_PERCENT {
            return Err(r.reserved("battery_level", 0, u32::from(percent)).into());
        }
        r.finish()?;
        Ok(Self { percent })
    }

    /// Encodes the value; fails for a level above 100, which
    /// [`BatteryLevel::decode`] would refuse.
    pub fn encode(&self) -> Result<Vec<u8>> {
        if self.percent > MAX_PERCENT {
            return Err(Error::Unencodable {
                characteristic: CHARACTERISTIC,
                field: "battery_level",
                reason: "levels above 100 % are reserved",
            });
        }
        let mut w = Writer::new();
        w.u8(self.percent);
        Ok(w.into_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // BAS 1.0 §3.1: one uint8, 0..=100 percent.
    #[test]
    fn decodes_a_level_from_the_specification_range() {
        assert_eq!(
            BatteryLevel::decode(&[0x64]).ok(),
            Some(BatteryLevel { percent: 100 })
        );
        assert_eq!(
            BatteryLevel::decode(&[0x00]).ok(),
            Some(BatteryLevel { percent: 0 })
        );
    }

    #[test]
    fn level_above_100_is_reserved() {
        assert_eq!(
            BatteryLevel::decode(&[101]),
            Err(Error::Reserved {
                characteristic: CHARACTERISTIC,
                field: "battery_level",
                offset: 0,
                value: 101
            })
        );
        assert!(matches!(
            BatteryLevel { percent: 255 }.encode(),
            Err(Error::Unencodable {
                field: "battery_level",
                ..
            })
        ));
    }

    #[test]
    fn empty_value_is_truncated() {
        assert_eq!(
            BatteryLevel::decode(&[]),
            Err(Error::Truncated {
                characteristic: CHARACTERISTIC,
                field: "battery_level",
                offset: 0,
                needed: 1,
                available: 0
            })
        );
    }

    #[test]
    fn second_byte_is_oversized() {
        assert_eq!(
            BatteryLevel::decode(&[50, 0]),
            Err(Error::Oversized {
                characteristic: CHARACTERISTIC,
                field: "battery_level",
                offset: 1,
                extra: 1
            })
        );
    }

    proptest! {
        #[test]
        fn every_valid_level_round_trips(percent in 0u8..=100) {
            let level = BatteryLevel { percent };
            let bytes = level.encode();
            prop_assert_eq!(bytes.as_deref().ok(), Some(&[percent][..]));
            prop_assert_eq!(BatteryLevel::decode(&[percent]).ok(), Some(level));
        }

        #[test]
        fn decoded_bytes_reencode_exactly(bytes in proptest::collection::vec(any::<u8>(), 0..3)) {
            if let Ok(level) = BatteryLevel::decode(&bytes) {
                prop_assert_eq!(level.encode().ok(), Some(bytes));
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = BatteryLevel::decode(&bytes);
        }
    }
}
