//! Glucose traces as CSV: a header naming a `time` column (RFC 3339, UTC)
//! and a `glucose_mgdl` column, other columns ignored, in any order. The
//! shape `vigil simulate` writes and `vigil reduce|metrics|alerts` read.

use std::io::{Read, Write};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use vigil_core::model::Sample;

use crate::Failure;

/// Column holding the time.
pub const TIME: &str = "time";
/// Column holding glucose in mg/dL.
pub const GLUCOSE: &str = "glucose_mgdl";

/// A trace as read: the samples and each sample's original row, so a
/// subset can be written back with every column intact.
#[derive(Debug, Default)]
pub struct Trace {
    /// The header row as read.
    pub header: csv::StringRecord,
    /// Rows in file order.
    pub rows: Vec<csv::StringRecord>,
    /// One sample per row, same order.
    pub samples: Vec<Sample>,
}

/// Reads a trace from a file path (`-` for stdin).
pub fn read_path(path: &Path) -> Result<Trace, Failure> {
    if path.as_os_str() == "-" {
        read(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(path)
            .map_err(|e| Failure::Other(format!("cannot open {}: {e}", path.display())))?;
        read(file)
    }
}

/// Reads a trace; a bad row is an input error naming its line.
pub fn read(input: impl Read) -> Result<Trace, Failure> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let header = reader
        .headers()
        .map_err(|e| Failure::Input(format!("cannot read CSV header: {e}")))?
        .clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Failure::Input(format!("CSV header has no `{name}` column")))
    };
    let (t_col, g_col) = (col(TIME)?, col(GLUCOSE)?);
    let mut trace = Trace {
        header,
        ..Trace::default()
    };
    for (i, row) in reader.records().enumerate() {
        // Line 1 is the header.
        let line = i + 2;
        let row = row.map_err(|e| Failure::Input(format!("line {line}: {e}")))?;
        let time = row
            .get(t_col)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .ok_or_else(|| Failure::Input(format!("line {line}: `time` is not RFC 3339")))?
            .with_timezone(&Utc);
        let value = row
            .get(g_col)
            .and_then(|g| g.parse::<f64>().ok())
            .filter(|g| g.is_finite())
            .ok_or_else(|| {
                Failure::Input(format!("line {line}: `glucose_mgdl` is not a number"))
            })?;
        trace.samples.push(Sample { time, value });
        trace.rows.push(row);
    }
    Ok(trace)
}

/// Writes the header and the rows at `keep` (indices into `trace.rows`).
pub fn write_rows(
    out: impl Write,
    trace: &Trace,
    keep: impl IntoIterator<Item = usize>,
) -> Result<(), Failure> {
    let mut w = csv::Writer::from_writer(out);
    let io = |e: csv::Error| Failure::Other(format!("cannot write CSV: {e}"));
    w.write_record(&trace.header).map_err(io)?;
    for i in keep {
        if let Some(row) = trace.rows.get(i) {
            w.write_record(row).map_err(io)?;
        }
    }
    w.flush()
        .map_err(|e| Failure::Other(format!("cannot write CSV: {e}")))
}

/// Formats a time the way traces carry it.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
