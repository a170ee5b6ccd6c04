//! What the cloud holds, read straight from the service's SQLite file
//! (read-only, beside the running service): how many readings arrived, for
//! how many patients, and how many of them travelled in full versus held
//! back by the phones' bounded-error reduction (sent as sequence and time,
//! and reconstructed by the service). That split is the reduction ratio the
//! demo reports; no reading value is read.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::service::DemoPatient;
use crate::Failure;

/// One stream's readings in the cloud.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamFigures {
    /// The stream's name (`glucose`, `heart_rate`, ...).
    pub stream: String,
    /// Readings that travelled with their value.
    pub full: u64,
    /// Readings held back by reduction, reconstructed by the service.
    pub held_back: u64,
}

/// The cloud's readings at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudFigures {
    /// Readings stored, every stream.
    pub readings: u64,
    /// Patients with at least one reading.
    pub patients: u64,
    /// Per stream, by name.
    pub streams: Vec<StreamFigures>,
}

impl CloudFigures {
    /// "glucose 38 % sent in full, heart_rate 4 %": the share of each
    /// stream's readings that travelled with their value.
    pub fn reduction_line(&self) -> String {
        let parts: Vec<String> = self
            .streams
            .iter()
            .filter(|s| s.full + s.held_back > 0)
            .map(|s| {
                let total = s.full + s.held_back;
                format!(
                    "{} {:.0} % of {} sent in full",
                    s.stream,
                    100.0 * s.full as f64 / total as f64,
                    total
                )
            })
            .collect();
        if parts.is_empty() {
            "nothing synced yet".into()
        } else {
            parts.join(", ")
        }
    }
}

fn failed(e: rusqlite::Error) -> Failure {
    Failure::Other(format!("reading the demo service's database: {e}"))
}

/// Counts the readings of this run's `patients` in the service's database
/// at `path` (a kept database also holds earlier runs' patients).
pub fn read(path: &Path, patients: &[DemoPatient]) -> Result<CloudFigures, Failure> {
    let first = patients.iter().map(|p| p.id).min().unwrap_or(0);
    let last = patients.iter().map(|p| p.id).max().unwrap_or(-1);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed)?;
    conn.busy_timeout(Duration::from_secs(2)).map_err(failed)?;
    let mut figures = CloudFigures::default();
    let mut stmt = conn
        .prepare(
            "SELECT stream, held_back, COUNT(*) FROM readings \
             WHERE patient_id BETWEEN ?1 AND ?2 \
             GROUP BY stream, held_back ORDER BY stream",
        )
        .map_err(failed)?;
    let rows = stmt
        .query_map([first, last], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(failed)?;
    for row in rows {
        let (stream, held, count) = row.map_err(failed)?;
        let count = u64::try_from(count).unwrap_or(0);
        figures.readings += count;
        if figures.streams.last().map(|s| &s.stream) != Some(&stream) {
            figures.streams.push(StreamFigures {
                stream,
                ..StreamFigures::default()
            });
        }
        if let Some(s) = figures.streams.last_mut() {
            if held {
                s.held_back += count;
            } else {
                s.full += count;
            }
        }
    }
    figures.patients = conn
        .query_row(
            "SELECT COUNT(DISTINCT patient_id) FROM readings WHERE patient_id BETWEEN ?1 AND ?2",
            [first, last],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(failed)?;
    Ok(figures)
}
