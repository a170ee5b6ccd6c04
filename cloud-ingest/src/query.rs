//! Raw query strings as ordered (key, value) pairs: FHIR repeats `date`,
//! and Nightscout's `find[date][$gte]` keys do not fit a struct.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};

use crate::error::{Error, Result};

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes one `application/x-www-form-urlencoded` component.
pub fn decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let v = bytes
                    .get(i + 1)
                    .and_then(|h| hex(*h))
                    .zip(bytes.get(i + 2).and_then(|l| hex(*l)))
                    .map(|(h, l)| h * 16 + l)
                    .ok_or_else(|| {
                        Error::InvalidInput("bad percent-encoding in the query".into())
                    })?;
                out.push(v);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| Error::InvalidInput("the query is not UTF-8".into()))
}

/// All pairs of a raw query, in order.
pub fn pairs(raw: Option<&str>) -> Result<Vec<(String, String)>> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// A bare date as queries carry it (`2026-03-01`).
pub fn day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// A time as people and clients write one in a query: RFC 3339, or a bare
/// date meaning its first moment, UTC.
pub fn instant(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    day(s).map(|d| d.and_time(NaiveTime::MIN).and_utc())
}

/// The longest report period.
pub const MAX_PERIOD: TimeDelta = TimeDelta::days(90);

/// Resolves a report or export period (dashboard, CSV): default the last 14 days, at most 90 days.
pub fn period(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let to = to.unwrap_or_else(Utc::now);
    let from = match from {
        Some(from) => from,
        None => crate::validate::shift(to, -TimeDelta::days(14), "to")?,
    };
    if from >= to {
        return Err(Error::InvalidInput("`from` must be before `to`".into()));
    }
    if to.signed_duration_since(from) > MAX_PERIOD {
        return Err(Error::InvalidInput(
            "the period may be at most 90 days".into(),
        ));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_nightscout_and_fhir_queries() {
        let p = pairs(Some("find%5Bdate%5D%5B%24gte%5D=1000&count=2&date=ge2026-03-01T00%3A00%3A00Z&date=le2026-03-02")).unwrap();
        assert_eq!(p[0], ("find[date][$gte]".into(), "1000".into()));
        assert_eq!(p[2], ("date".into(), "ge2026-03-01T00:00:00Z".into()));
        assert_eq!(p[3].1, "le2026-03-02");
        assert!(pairs(Some("a=%zz")).is_err());
        assert_eq!(pairs(None).unwrap(), vec![]);
    }
}
