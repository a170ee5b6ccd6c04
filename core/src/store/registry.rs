//! The device registry: which devices are paired, and which patient wore
//! which device when.
//!
//! A sensor can move between patients (a clinic's loaner oximeter) and a
//! patient changes CGM sensors every 10 to 15 days, so the buffer keeps wear
//! periods rather than one owner per device. Forgetting a device closes its
//! open wear period and keeps the history: readings already stored still
//! need to be attributed.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Buffer, from_micros, to_micros};
use crate::error::{Error, Result};
use crate::model::{DeviceId, PatientId};

/// A device as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device.
    pub device: DeviceId,
    /// What it is (e.g. `"cgm"`, `"heart_rate_strap"`, `"oximeter"`).
    pub kind: String,
    /// When it was (last) paired.
    pub paired_at: DateTime<Utc>,
    /// When it was forgotten, if it was.
    pub forgotten_at: Option<DateTime<Utc>>,
}

/// One period during which one patient wore one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WearPeriod {
    /// The device.
    pub device: DeviceId,
    /// Who wore it.
    pub patient: PatientId,
    /// Start of the period.
    pub from: DateTime<Utc>,
    /// End of the period; `None` while it is still worn.
    pub to: Option<DateTime<Utc>>,
}

impl Buffer {
    /// Pairs `device` of `kind` to `patient` from `at`: registers the device
    /// (or re-pairs a forgotten one) and closes any open wear period of the
    /// device at `at` before opening the new one.
    pub fn pair(
        &mut self,
        device: &DeviceId,
        kind: &str,
        patient: &PatientId,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let at = to_micros(at);
        let tx = self.conn.transaction()?;
        tx.prepare_cached(
            "INSERT INTO devices (device, kind, paired_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (device) DO UPDATE SET kind = excluded.kind, \
             paired_at = excluded.paired_at, forgotten_at = NULL",
        )?
        .execute(params![device.0, kind, at])?;
        close_open_wear(&tx, device, at)?;
        tx.prepare_cached("INSERT INTO wear (device, patient, worn_from) VALUES (?1, ?2, ?3)")?
            .execute(params![device.0, patient.0, at])?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets `device` at `at`: closes its open wear period and marks it
    /// forgotten, keeping the history. Fails with [`Error::InvalidInput`]
    /// for a device never paired.
    pub fn forget(&mut self, device: &DeviceId, at: DateTime<Utc>) -> Result<()> {
        let at = to_micros(at);
        let tx = self.conn.transaction()?;
        let n = tx
            .prepare_cached("UPDATE devices SET forgotten_at = ?2 WHERE device = ?1")?
            .execute(params![device.0, at])?;
        if n == 0 {
            return Err(Error::InvalidInput(
                "forget: device was never paired".into(),
            ));
        }
        close_open_wear(&tx, device, at)?;
        tx.commit()?;
        Ok(())
    }

    /// The patient who wore `device` at `at`, if anyone did.
    pub fn wearer_at(&self, device: &DeviceId, at: DateTime<Utc>) -> Result<Option<PatientId>> {
        let patient = self
            .conn
            .prepare_cached(
                "SELECT patient FROM wear WHERE device = ?1 AND worn_from <= ?2 \
                 AND (worn_to IS NULL OR worn_to > ?2) ORDER BY worn_from DESC LIMIT 1",
            )?
            .query_row(params![device.0, to_micros(at)], |r| r.get::<_, String>(0))
            .optional()?;
        Ok(patient.map(PatientId))
    }

    /// Every registered device, forgotten ones included.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT device, kind, paired_at, forgotten_at FROM devices ORDER BY device",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(device, kind, paired, forgotten)| {
                Ok(DeviceRecord {
                    device: DeviceId(device),
                    kind,
                    paired_at: from_micros(paired)?,
                    forgotten_at: forgotten.map(from_micros).transpose()?,
                })
            })
            .collect()
    }

    /// The wear history of `device`, oldest first.
    pub fn wear_history(&self, device: &DeviceId) -> Result<Vec<WearPeriod>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT patient, worn_from, worn_to FROM wear WHERE device = ?1 ORDER BY worn_from, id",
        )?;
        let rows = stmt
            .query_map([&device.0], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(patient, from, to)| {
                Ok(WearPeriod {
                    device: device.clone(),
                    patient: PatientId(patient),
                    from: from_micros(from)?,
                    to: to.map(from_micros).transpose()?,
                })
            })
            .collect()
    }
}

fn close_open_wear(tx: &rusqlite::Transaction<'_>, device: &DeviceId, at: i64) -> Result<()> {
    tx.prepare_cached("UPDATE wear SET worn_to = ?2 WHERE device = ?1 AND worn_to IS NULL")?
        .execute(params![device.0, at])?;
    Ok(())
}
