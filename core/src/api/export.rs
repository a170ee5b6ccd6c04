//! `export_batch()` and `confirm_export()`: the phone's health store
//! (Health Connect, HealthKit) takes the buffer's readings through a cursor
//! kept in the buffer, so an export cut short resumes where it stopped and
//! readings stored before the app opted in are exported too.
//!
//! The app loops: take a batch, store it in the health store (which
//! replaces a record it already has, by the reading's identity), confirm
//! the batch's cursor. A failure between storing and confirming resends the
//! same batch on the next pass; nothing is skipped.

use super::error::{SdkError, SdkResult};
use super::events::ReadingEvent;
use crate::model::Stream;
use crate::store::Buffer;

/// The most readings one batch may ask for: a batch is held in memory and
/// crosses the FFI as one value.
pub const MAX_EXPORT_BATCH: u32 = 10_000;

/// The longest export target name.
const MAX_TARGET_LEN: usize = 64;

/// Readings for an export target, oldest first, and the cursor that
/// confirms them.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ExportBatch {
    /// The readings not yet confirmed by the target (held-back ones
    /// included), at most the limit asked for; empty when the target has
    /// everything still stored.
    pub readings: Vec<ReadingEvent>,
    /// Pass to `confirm_export` once the target stored every reading of
    /// this batch. Opaque (a buffer row id, not a count or a time); 0 for
    /// an empty batch, and confirming 0 changes nothing.
    pub cursor: u64,
}

/// Refuses an empty or overlong target name.
fn check_target(target: &str) -> SdkResult<()> {
    if target.trim().is_empty() || target.len() > MAX_TARGET_LEN {
        return Err(SdkError::invalid(format!(
            "an export target is a non-empty name of at most {MAX_TARGET_LEN} bytes"
        )));
    }
    Ok(())
}

pub(crate) fn batch(
    buffer: &Buffer,
    target: &str,
    streams: &[String],
    limit: u32,
) -> SdkResult<ExportBatch> {
    check_target(target)?;
    if limit == 0 || limit > MAX_EXPORT_BATCH {
        return Err(SdkError::invalid(format!(
            "an export batch holds 1 to {MAX_EXPORT_BATCH} readings"
        )));
    }
    if streams.is_empty() {
        return Err(SdkError::invalid("name at least one stream to export"));
    }
    let streams = streams
        .iter()
        .map(|name| {
            Stream::parse(name).ok_or_else(|| SdkError::invalid(format!("unknown stream `{name}`")))
        })
        .collect::<SdkResult<Vec<_>>>()?;
    let rows = buffer.readings_to_export(target, &streams, limit as usize)?;
    let cursor = rows.last().map_or(0, |r| u64::try_from(r.id).unwrap_or(0));
    Ok(ExportBatch {
        readings: rows
            .iter()
            .map(|r| ReadingEvent::from_reading(&r.reading))
            .collect(),
        cursor,
    })
}

pub(crate) fn confirm(buffer: &mut Buffer, target: &str, cursor: u64) -> SdkResult<()> {
    check_target(target)?;
    if cursor == 0 {
        return Ok(());
    }
    let id = i64::try_from(cursor)
        .map_err(|_| SdkError::invalid("export cursor is not one export_batch returned"))?;
    buffer.advance_export_cursor(target, id)?;
    Ok(())
}
