//! Glucose readings as CSV, in the shape `vigil reduce|metrics|alerts` read
//! (`core/cli/src/trace.rs`): a header naming a `time` column (RFC 3339) and
//! a `glucose_mgdl` column, other columns ignored, in any order.
//!
//! Place in the data flow: both sides, behind the gate. Export reads the
//! resolved glucose a [`crate::access::PatientAccess`] proof allows; import
//! is an intake path for a clinic's files (validated, stored as device
//! `csv-import` through a write proof). Handlers in `routes.rs`.
//!
//! Decision: an import is all or nothing. Every row is checked first and
//! every bad row is reported (line and what is wrong), so a clinic fixing a
//! file sees all its problems at once; only a fully valid file is returned
//! for storing, so a bad file never leaves half its rows behind.

pub(crate) mod routes;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use vigil_model::reading::Sample;

use crate::error::{BadRow, Error, Result, RowProblem};

/// Column holding the time.
pub const TIME: &str = "time";
/// Column holding glucose in mg/dL.
pub const GLUCOSE: &str = "glucose_mgdl";
pub use crate::validate::PLAUSIBLE_MG_DL;

/// Writes `samples` (mg/dL) as CSV with the header `time,glucose_mgdl`.
pub fn export(samples: &[Sample]) -> String {
    let mut out = String::with_capacity(32 * (samples.len() + 1));
    out.push_str(TIME);
    out.push(',');
    out.push_str(GLUCOSE);
    out.push('\n');
    for s in samples {
        out.push_str(&s.time.to_rfc3339_opts(SecondsFormat::Secs, true));
        out.push(',');
        out.push_str(&format!("{}", s.value));
        out.push('\n');
    }
    out
}

/// Parses a whole file, times checked against `now` and `max_future`.
/// `Err(Error::InvalidCsv)` lists every bad row; `Err(Error::InvalidInput)`
/// for a missing header column or an empty file.
pub fn import(text: &str, now: DateTime<Utc>, max_future: TimeDelta) -> Result<Vec<Sample>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| Error::InvalidInput(format!("cannot read the CSV header: {e}")))?
        .clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::InvalidInput(format!("the CSV header has no `{name}` column")))
    };
    let (t_col, g_col) = (col(TIME)?, col(GLUCOSE)?);
    let mut samples = Vec::new();
    let mut bad = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let line = i + 2;
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                bad.push(BadRow {
                    line,
                    problem: RowProblem::Malformed {
                        detail: e.to_string(),
                    },
                });
                continue;
            }
        };
        let time = row
            .get(t_col)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let value = row
            .get(g_col)
            .and_then(|g| g.parse::<f64>().ok())
            .filter(|g| g.is_finite());
        match (time, value) {
            (None, _) => bad.push(BadRow {
                line,
                problem: RowProblem::BadTime,
            }),
            (_, None) => bad.push(BadRow {
                line,
                problem: RowProblem::BadGlucose,
            }),
            (Some(_), Some(v)) if !(PLAUSIBLE_MG_DL.0..=PLAUSIBLE_MG_DL.1).contains(&v) => bad
                .push(BadRow {
                    line,
                    problem: RowProblem::ImplausibleGlucose,
                }),
            (Some(time), Some(value)) => match crate::validate::check_time(time, now, max_future) {
                Some(reason) => bad.push(BadRow {
                    line,
                    problem: RowProblem::ImplausibleTime {
                        reason: crate::validate::reason_name(reason),
                    },
                }),
                None => samples.push(Sample { time, value }),
            },
        }
    }
    if !bad.is_empty() {
        return Err(Error::InvalidCsv(bad));
    }
    if samples.is_empty() {
        return Err(Error::InvalidInput("the CSV file holds no readings".into()));
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    fn import_now(text: &str) -> Result<Vec<Sample>> {
        import(text, Utc::now(), TimeDelta::minutes(5))
    }

    use super::*;
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + chrono::TimeDelta::minutes(min)
    }

    #[test]
    fn export_then_import_is_identity() {
        let samples: Vec<Sample> = (0..50)
            .map(|i| Sample {
                time: at(5 * i),
                value: 80.0 + i as f64 * 1.5,
            })
            .collect();
        let text = export(&samples);
        assert!(text.starts_with("time,glucose_mgdl\n2026-03-01T00:00:00Z,80\n"));
        assert_eq!(import_now(&text).unwrap(), samples);
    }

    #[test]
    fn columns_in_any_order_and_extra_columns_are_ignored() {
        let text = "note,glucose_mgdl,time\na,101,2026-03-01T00:05:00+01:00\n";
        let got = import_now(text).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].value, 101.0);
        assert_eq!(got[0].time, at(5) - chrono::TimeDelta::hours(1));
    }

    #[test]
    fn every_bad_row_is_reported_and_nothing_returned() {
        let text = "time,glucose_mgdl\n\
                    2026-03-01T00:00:00Z,100\n\
                    yesterday,100\n\
                    2026-03-01T00:10:00Z,abc\n\
                    2026-03-01T00:15:00Z,5000\n\
                    2026-03-01T00:20:00Z,NaN\n";
        match import_now(text) {
            Err(Error::InvalidCsv(rows)) => assert_eq!(
                rows,
                vec![
                    BadRow {
                        line: 3,
                        problem: RowProblem::BadTime
                    },
                    BadRow {
                        line: 4,
                        problem: RowProblem::BadGlucose
                    },
                    BadRow {
                        line: 5,
                        problem: RowProblem::ImplausibleGlucose
                    },
                    BadRow {
                        line: 6,
                        problem: RowProblem::BadGlucose
                    },
                ]
            ),
            other => panic!("expected InvalidCsv, got {other:?}"),
        }
    }

    #[test]
    fn missing_column_and_empty_file_are_input_errors() {
        assert!(matches!(
            import_now("time,sgv\n"),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            import_now("time,glucose_mgdl\n"),
            Err(Error::InvalidInput(_))
        ));
    }
}
