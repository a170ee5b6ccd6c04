//! The monthly partitions of `readings` (migration 0022): the current
//! calendar month (UTC) and the next [`MONTHS_AHEAD`] exist at all times,
//! so intake never waits on a partition being made and the DEFAULT
//! partition stays empty in normal running.
//!
//! Decisions:
//! - A month is made as a standalone table, filled with whatever the
//!   DEFAULT partition holds of it, then attached, all in one transaction.
//!   `CREATE TABLE … PARTITION OF` would refuse outright once the default
//!   partition holds a row of that month (a reading from a phone with a
//!   clock far ahead, a month the service was not running for), and
//!   ATTACH takes a weaker lock on `readings` (readers and writers of other
//!   partitions go on).
//! - Replicas run this at start and daily, together: a transaction-scoped
//!   advisory lock makes one of them do each month, and the others find it
//!   made.
//! - Each new partition gets its replica identity (its part of the unique
//!   key): PostgreSQL 15 does not inherit it, see the migration.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use postgres::Client;

use crate::error::{Error, Result};

/// How many months after the current one always have their partition.
pub const MONTHS_AHEAD: u32 = 2;

/// Key of the advisory lock held while a month's partition is made ("vigilpart").
const UPKEEP_LOCK: i64 = 0x76_69_67_69_6c_70_61_72;

/// One calendar month's partition: its name and its `[from, to)` bounds in
/// µs since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Month {
    /// `readings_YYYY_MM`.
    pub name: String,
    /// The first µs of the month (00:00 UTC on the 1st).
    pub from: i64,
    /// The first µs of the next month.
    pub to: i64,
}

impl Month {
    /// The month `ahead` months after the one holding `at` (UTC).
    pub fn of(at: DateTime<Utc>, ahead: u32) -> Result<Self> {
        let out_of_range = || Error::Internal("a partition month is out of range".into());
        let first = NaiveDate::from_ymd_opt(at.year(), at.month(), 1)
            .and_then(|d| d.checked_add_months(Months::new(ahead)))
            .ok_or_else(out_of_range)?;
        let next = first
            .checked_add_months(Months::new(1))
            .ok_or_else(out_of_range)?;
        let micros = |d: NaiveDate| {
            d.and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .timestamp_micros()
        };
        Ok(Self {
            name: format!("readings_{:04}_{:02}", first.year(), first.month()),
            from: micros(first),
            to: micros(next),
        })
    }
}

/// Makes the partitions of the month holding `now` and the next
/// [`MONTHS_AHEAD`] where missing, moving their rows out of the DEFAULT
/// partition. Idempotent. Returns the names of the partitions it made.
pub fn ensure(client: &mut Client, now: DateTime<Utc>) -> Result<Vec<String>> {
    let mut made = Vec::new();
    for ahead in 0..=MONTHS_AHEAD {
        let month = Month::of(now, ahead)?;
        if ensure_month(client, &month)? {
            made.push(month.name);
        }
    }
    Ok(made)
}

/// Makes one month's partition unless it exists; true when it made it.
fn ensure_month(client: &mut Client, m: &Month) -> Result<bool> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&UPKEEP_LOCK])?;
    let exists: bool = tx
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&m.name])?
        .try_get(0)?;
    if exists {
        tx.commit()?;
        return Ok(false);
    }
    // Every name and bound below is built here from integers, never from
    // input. The default partition is locked first, and whole: ATTACH
    // takes that lock anyway, and taking it before the move means no
    // reading of this month can slip into the default partition between
    // the move and the attach.
    let name = &m.name;
    let (from, to) = (m.from, m.to);
    tx.batch_execute(&format!(
        "LOCK TABLE readings_default IN ACCESS EXCLUSIVE MODE;
         CREATE TABLE {name} (LIKE readings INCLUDING DEFAULTS);
         WITH moved AS (
             DELETE FROM readings_default WHERE time >= {from} AND time < {to} RETURNING *
         )
         INSERT INTO {name} SELECT * FROM moved;
         ALTER TABLE {name} ADD CONSTRAINT {name}_series_seq_time_key
             UNIQUE (patient_id, device, stream, session, seq, time);
         ALTER TABLE {name} REPLICA IDENTITY USING INDEX {name}_series_seq_time_key;
         ALTER TABLE readings ATTACH PARTITION {name} FOR VALUES FROM ({from}) TO ({to});"
    ))?;
    tx.commit()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn months_are_named_and_bounded_in_utc_across_a_year_end() {
        let at = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        let dec = Month::of(at, 0).unwrap();
        let feb = Month::of(at, 2).unwrap();
        assert_eq!(dec.name, "readings_2026_12");
        assert_eq!(
            dec.from,
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
                .unwrap()
                .timestamp_micros()
        );
        assert_eq!(dec.to, Month::of(at, 1).unwrap().from);
        assert_eq!(feb.name, "readings_2027_02");
        assert_eq!(
            feb.to,
            Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0)
                .unwrap()
                .timestamp_micros()
        );
    }

    #[test]
    fn the_last_representable_month_is_an_error_not_a_panic() {
        assert!(Month::of(DateTime::<Utc>::MAX_UTC, 2).is_err());
    }
}
