//! `resolved_readings()`: the one series that stands for the patient when
//! several devices measured the same quantity.
//!
//! `readings()` (the listener, `export_batch`) stays raw: every reading of
//! every device. This view reads the buffer's raw readings of a range and
//! returns what [`Precedence::resolve`] picks, one reading per coincident
//! moment, by the same default policy the cloud uses, so a chart on the
//! phone and the clinician's view agree.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};

use super::config::DeviceKind;
use super::error::{SdkError, SdkResult};
use super::events::ReadingEvent;
use crate::model::{DeviceId, PatientId, Reading};
use crate::precedence::{Precedence, PrecedenceConfig, Quantity};
use crate::store::Buffer;

/// The longest range one call resolves: the buffer has no index on
/// measurement time, and a day of a 1 Hz strap is already 86,400 readings
/// crossing the FFI.
pub const MAX_RESOLVED_RANGE_MS: i64 = 24 * 3600 * 1000;

pub(crate) fn resolved(
    buffer: &Buffer,
    patient: &str,
    paired: &HashMap<String, DeviceKind>,
    quantity: &str,
    from_ms: i64,
    to_ms: i64,
) -> SdkResult<Vec<ReadingEvent>> {
    let quantity = Quantity::ALL
        .into_iter()
        .find(|q| q.as_str() == quantity)
        .ok_or_else(|| {
            SdkError::invalid(format!(
                "unknown quantity `{quantity}`: use glucose, heart_rate or spo2"
            ))
        })?;
    if to_ms <= from_ms || to_ms.saturating_sub(from_ms) > MAX_RESOLVED_RANGE_MS {
        return Err(SdkError::invalid(format!(
            "a resolved range ends after it starts and spans at most {MAX_RESOLVED_RANGE_MS} ms"
        )));
    }
    let (from, to) = (time(from_ms)?, time(to_ms)?);
    let mut precedence =
        Precedence::new(PrecedenceConfig::default_for(quantity)).map_err(crate::Error::from)?;
    for (device, kind) in paired {
        precedence = precedence.with_device_class(DeviceId(device.clone()), kind.class());
    }
    let readings: Vec<Reading> = buffer
        .readings_measured(quantity.streams(), from, to)?
        .into_iter()
        .map(|r| r.reading)
        .collect();
    let resolution = precedence
        .resolve(&PatientId(patient.to_string()), &readings)
        .map_err(crate::Error::from)?;
    Ok(resolution
        .series
        .iter()
        .map(|p| ReadingEvent::from_reading(&p.reading))
        .collect())
}

fn time(ms: i64) -> SdkResult<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| SdkError::invalid("a resolved range's time is out of range"))
}
