//! `status()`: the buffer and devices at a glance.

use super::config::Network;
use super::error::SdkResult;
use super::events::PressureLevel;
use crate::model::{DeviceId, Stream};
use crate::store::capacity::{CRITICAL_WATERMARK, HIGH_WATERMARK};
use crate::store::{Buffer, SyncState};

/// Completeness over every paired device and stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct LedgerSummary {
    /// Readings the sensors delivered (duplicates included).
    pub received: u64,
    /// Readings stored.
    pub stored: u64,
    /// Readings the sensors no longer held (reported missing).
    pub reported_missing: u64,
    /// Readings the cloud acknowledged.
    pub acknowledged: u64,
    /// Readings evicted before the cloud had them.
    pub evicted_unsent: u64,
    /// Readings stored that stay on the phone and are never synced (the
    /// CGM's own trend, which the cloud derives from glucose): not unsent.
    pub local_only: u64,
}

/// The SDK's state, for a status screen.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Status {
    /// Paired devices.
    pub devices: Vec<String>,
    /// Whether collection runs.
    pub running: bool,
    /// Readings stored and still to be acknowledged by the cloud (unsent or
    /// in flight); local-only readings are never counted here.
    pub unsent_readings: u64,
    /// Readings stored in total.
    pub stored_readings: u64,
    /// Alerts not yet delivered to the cloud.
    pub pending_alerts: u64,
    /// Bytes the buffer uses.
    pub buffer_used_bytes: u64,
    /// The buffer's byte budget.
    pub buffer_budget_bytes: u64,
    /// How full the buffer is relative to its budget.
    pub buffer_pressure: PressureLevel,
    /// Last acknowledged sync, Unix ms (none until the sync engine runs).
    pub last_sync_ms: Option<i64>,
    /// Last time a device was heard from, Unix ms.
    pub last_device_contact_ms: Option<i64>,
    /// The network the app last reported.
    pub network: Network,
    /// Completeness over every paired device and stream.
    pub ledger: LedgerSummary,
}

pub(crate) fn read(
    buffer: &Buffer,
    devices: &[String],
    running: bool,
    last_device_contact_ms: Option<i64>,
    network: Network,
) -> SdkResult<Status> {
    let stored = buffer.count(None, None)?;
    // Local-only readings are final on the phone: counting "stored minus
    // acknowledged" would report them pending for ever.
    let unsent = buffer
        .count(None, Some(SyncState::Unsent))?
        .saturating_add(buffer.count(None, Some(SyncState::InFlight))?);
    let used = buffer.used_bytes()?;
    let budget = buffer.capacity_policy().budget_bytes;
    let fill = used as f64 / budget.max(1) as f64;
    let pressure = if fill >= CRITICAL_WATERMARK {
        PressureLevel::Critical
    } else if fill >= HIGH_WATERMARK {
        PressureLevel::High
    } else {
        PressureLevel::Normal
    };
    let mut ledger = LedgerSummary::default();
    for d in devices {
        for stream in Stream::ALL {
            let c = buffer.completeness(&DeviceId(d.clone()), stream)?;
            ledger.received += c.received;
            ledger.stored += c.stored;
            ledger.reported_missing += c.reported_missing;
            ledger.acknowledged += c.acknowledged;
            ledger.evicted_unsent += c.evicted_unsent;
            ledger.local_only += c.local_only;
        }
    }
    Ok(Status {
        devices: devices.to_vec(),
        running,
        unsent_readings: unsent,
        stored_readings: stored,
        pending_alerts: u64::try_from(buffer.pending_alerts()?.len()).unwrap_or(u64::MAX),
        buffer_used_bytes: used,
        buffer_budget_bytes: budget,
        buffer_pressure: pressure,
        last_sync_ms: None,
        last_device_contact_ms,
        network,
        ledger,
    })
}
