//! A continuous glucose monitor (CGM Service 0x181F): read Feature,
//! Session Start Time and Status to anchor time offsets to UTC, ask the
//! SOCP for the communication interval, then backfill through the RACP
//! from the cursor after every (re)connect and whenever a live
//! notification reveals a hole, and stream.
//!
//! Records are keyed by (sensor session, time offset): a record at or
//! before the cursor is a duplicate, one past the next expected offset
//! a hole to backfill, and offsets the sensor no longer holds a
//! [`Gap`] with [`GapReason::NotHeld`].

use chrono::TimeDelta;

use super::link::{Halt, Step, has};
use super::{Anchor, Cursor, DeviceEventKind, Gap, GapReason, Session, SessionSink, time};
use crate::codec::cgm::socp::{SocpRequest, SocpResponse};
use crate::codec::cgm::{CgmFeature, CgmMeasurement, CgmSessionStartTime, CgmStatus};
use crate::codec::racp::{FilterValue, RacpRequest, RacpResponse, RacpResponseCode, RecordFilter};
use crate::codec::uuid as u;
use crate::model::{Quality, Stream};
use crate::transport::Transport;

impl<T: Transport + ?Sized, S: SessionSink> Session<T, S> {
    pub(super) async fn serve_cgm(&mut self) -> Step {
        let chars = self.transport.discover(&self.cfg.peripheral).await?;
        if !has(&chars, u::CGM_MEASUREMENT) || !has(&chars, u::RECORD_ACCESS_CONTROL_POINT) {
            return Err(Halt::Link("not a CGM with a record store".into()));
        }
        let feature = CgmFeature::decode(&self.read(u::CGM_FEATURE).await?)?;
        self.crc = feature.features.e2e_crc();
        self.refresh_anchor().await?;
        self.read_battery(&chars).await?;
        self.subscribe(u::CGM_MEASUREMENT).await?;
        self.subscribe(u::RECORD_ACCESS_CONTROL_POINT).await?;
        if has(&chars, u::CGM_SPECIFIC_OPS_CONTROL_POINT) {
            self.subscribe(u::CGM_SPECIFIC_OPS_CONTROL_POINT).await?;
            if let Some(minutes) = self.communication_interval().await? {
                self.interval_min = minutes;
            }
        }
        self.backfill_cgm().await?;
        loop {
            let Some((short, value)) = self.value_or_end(self.until).await? else {
                return Err(Halt::Until);
            };
            match short {
                u::CGM_MEASUREMENT if self.live_cgm(&value) => self.backfill_cgm().await?,
                u::BATTERY_LEVEL => self.battery_value(&value),
                _ => {}
            }
        }
    }

    pub(super) async fn communication_interval(&mut self) -> Step<Option<u16>> {
        let req = SocpRequest::GetCommunicationInterval.encode(self.crc);
        self.write(u::CGM_SPECIFIC_OPS_CONTROL_POINT, &req).await?;
        let deadline = self.response_deadline();
        while let Some((short, value)) = self.value_or_end(deadline).await? {
            match short {
                u::CGM_SPECIFIC_OPS_CONTROL_POINT => {
                    return Ok(match SocpResponse::decode(&value, self.crc) {
                        Ok(SocpResponse::CommunicationInterval { minutes }) if minutes > 0 => {
                            Some(u16::from(minutes))
                        }
                        _ => None,
                    });
                }
                u::CGM_MEASUREMENT => {
                    // A live record during the exchange: the backfill that
                    // follows fetches it again in order.
                }
                u::BATTERY_LEVEL => self.battery_value(&value),
                _ => {}
            }
        }
        Ok(None)
    }

    /// Reads Session Start Time and CGM Status; handles a new session, the
    /// clock drift and a stopped session.
    pub(super) async fn refresh_anchor(&mut self) -> Step {
        let sst =
            CgmSessionStartTime::decode(&self.read(u::CGM_SESSION_START_TIME).await?, self.crc)?;
        let status = CgmStatus::decode(&self.read(u::CGM_STATUS).await?, self.crc)?;
        let a = time::anchor(&sst, status.time_offset_min, self.clock.now());
        if !self.drift_reported {
            self.drift_reported = true;
            self.event(DeviceEventKind::ClockDrift {
                drift_ms: a.drift.num_milliseconds(),
            });
        }
        if self.anchor.map(|old| old.session) != Some(a.session) {
            self.enter_session(a);
        }
        let octet = status.status.status;
        if octet.session_stopped() && !self.session_ended {
            self.session_ended = true;
            self.event(DeviceEventKind::SessionStopped);
        }
        if octet.device_battery_low() {
            self.battery_low(self.last_battery);
        }
        Ok(())
    }

    pub(super) fn enter_session(&mut self, a: Anchor) {
        let interval = TimeDelta::minutes(i64::from(self.interval_min));
        if let Some(c) = self.cursor(Stream::Glucose) {
            let known_ended = self.anchor.is_some() && self.session_ended;
            if c.session != Some(a.session) && !known_ended && c.time + interval < a.start {
                self.gap(Gap {
                    device: self.cfg.device.clone(),
                    stream: Stream::Glucose,
                    session: c.session,
                    from: c.time,
                    to: a.start,
                    first_missing: None,
                    last_missing: None,
                    reason: GapReason::SessionChanged,
                });
            }
        }
        let resumed = self
            .cursor(Stream::Glucose)
            .is_some_and(|c| c.session == Some(a.session));
        if !resumed {
            self.event(DeviceEventKind::NewSession {
                session: a.session,
                start: a.start,
            });
        }
        self.anchor = Some(a);
        self.session_ended = false;
        self.warming = false;
    }

    /// The glucose cursor, if it belongs to the current session.
    pub(super) fn cgm_cursor(&mut self) -> Option<Cursor> {
        let session = self.anchor.map(|a| a.session);
        self.cursor(Stream::Glucose)
            .filter(|c| session.is_some() && c.session == session)
    }

    /// Handles one live notification; `true` when a backfill is needed.
    pub(super) fn live_cgm(&mut self, value: &[u8]) -> bool {
        let mut need = false;
        for record in CgmMeasurement::records(value, self.crc) {
            let Ok(m) = record else {
                self.event(DeviceEventKind::CorruptFrame {
                    characteristic: u::CGM_MEASUREMENT,
                });
                need = true;
                continue;
            };
            let off = u64::from(m.time_offset_min);
            match self.cgm_cursor() {
                Some(c) if off == c.sequence => {} // a repeated notification
                Some(c) if off < c.sequence => need = true, // maybe a new session
                Some(c) if off > c.sequence + u64::from(self.interval_min) => need = true,
                _ if need => {} // keep order: the backfill brings it
                _ => self.accept_cgm(&m),
            }
        }
        need
    }

    pub(super) async fn backfill_cgm(&mut self) -> Step {
        self.refresh_anchor().await?;
        // A corrupt frame during the backfill itself is retried a few
        // times; the record stays in the sensor until it is read cleanly.
        for _ in 0..3 {
            let filter = match self.cgm_cursor() {
                Some(c) => match u16::try_from(c.sequence + 1) {
                    Ok(next) => RecordFilter::AtLeast(FilterValue::TimeOffset(next)),
                    Err(_) => return Ok(()),
                },
                None => RecordFilter::All,
            };
            let had_cursor = self.cgm_cursor().is_some();
            let req = RacpRequest::ReportStoredRecords(filter).encode()?;
            self.write(u::RECORD_ACCESS_CONTROL_POINT, &req).await?;
            let deadline = self.response_deadline();
            let mut got = Vec::new();
            let mut corrupt = 0;
            loop {
                let Some((short, value)) = self.value_or_end(deadline).await? else {
                    return Err(Halt::Link("RACP response timed out".into()));
                };
                match short {
                    u::CGM_MEASUREMENT => {
                        for r in CgmMeasurement::records(&value, self.crc) {
                            match r {
                                Ok(m) => got.push(m),
                                Err(_) => {
                                    corrupt += 1;
                                    self.event(DeviceEventKind::CorruptFrame {
                                        characteristic: u::CGM_MEASUREMENT,
                                    });
                                }
                            }
                        }
                    }
                    u::RECORD_ACCESS_CONTROL_POINT => match RacpResponse::decode(&value) {
                        Ok(RacpResponse::ResponseCode { code, .. }) => match code {
                            RacpResponseCode::Success | RacpResponseCode::NoRecordsFound => break,
                            other => {
                                return Err(Halt::Link(format!("RACP refused: {other:?}")));
                            }
                        },
                        Ok(RacpResponse::NumberOfStoredRecords(_)) => {}
                        Err(e) => return Err(Halt::Link(format!("bad RACP response: {e}"))),
                    },
                    u::BATTERY_LEVEL => self.battery_value(&value),
                    _ => {}
                }
            }
            got.sort_by_key(|m| m.time_offset_min);
            got.dedup_by_key(|m| m.time_offset_min);
            if got.is_empty() && !had_cursor && !self.session_ended && !self.warming {
                self.warming = true;
                self.event(DeviceEventKind::WarmingUp);
            }
            for m in &got {
                self.accept_cgm(m);
            }
            if corrupt == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Turns one record into readings, after the duplicate and gap checks
    /// against the cursor. Records must come in offset order.
    pub(super) fn accept_cgm(&mut self, m: &CgmMeasurement) {
        let Some(a) = self.anchor else { return };
        let off = u64::from(m.time_offset_min);
        let step = u64::from(self.interval_min);
        if let Some(c) = self.cgm_cursor() {
            if off <= c.sequence {
                return;
            }
            if off > c.sequence + step {
                self.gap(Gap {
                    device: self.cfg.device.clone(),
                    stream: Stream::Glucose,
                    session: Some(a.session),
                    from: c.time,
                    to: a.time_of(off),
                    first_missing: Some(c.sequence + step),
                    last_missing: Some(off - step),
                    reason: GapReason::NotHeld,
                });
            }
        }
        if self.warming {
            self.warming = false;
            self.event(DeviceEventKind::WarmUpComplete);
        }
        let time = a.time_of(off);
        let raw = m.encode();
        let flagged = m.status.is_some_and(|o| !o.is_empty())
            || m.cal_temp.is_some_and(|o| !o.is_empty())
            || m.warning.is_some_and(|o| !o.is_empty());
        let quality = Quality {
            percent: m.quality_percent(),
            flagged,
        };
        let value = m.glucose_mg_dl().unwrap_or(f64::NAN);
        if value.is_finite() {
            self.reading(
                Stream::Glucose,
                value,
                time,
                off,
                u::CGM_MEASUREMENT,
                raw.clone(),
                Some(a.session),
                quality,
            );
        } else {
            // A special value (NaN, NRes) is no reading, but the record was
            // received: move the cursor so it is neither refetched nor a gap
            // (unless the sink failed: then the run stops and the next one
            // starts from the sink's cursor).
            if self.sink_error.is_none() {
                self.cursors.insert(
                    Stream::Glucose,
                    Some(Cursor {
                        session: Some(a.session),
                        sequence: off,
                        time,
                    }),
                );
            }
        }
        if let Some(trend) = m.trend_mg_dl_per_min() {
            self.reading(
                Stream::GlucoseTrend,
                trend,
                time,
                off,
                u::CGM_MEASUREMENT,
                raw,
                Some(a.session),
                quality,
            );
        }
        if let Some(status) = m.status {
            if status.session_stopped() && !self.session_ended {
                self.session_ended = true;
                self.event(DeviceEventKind::SessionStopped);
            }
            if status.device_battery_low() {
                self.battery_low(self.last_battery);
            }
        }
    }
}
