//! A blood glucose meter (Glucose Service 0x1808): subscribe, then ask the
//! RACP for every record after the cursor's sequence number on connect
//! and at each poll. Records are keyed by sequence number; base times
//! carry no zone, so the configured UTC offset maps them.

use chrono::TimeDelta;

use super::link::{Halt, Step, has};
use super::{DeviceEventKind, Gap, GapReason, Session, SessionSink};
use crate::codec::glucose::GlucoseMeasurement;
use crate::codec::racp::{FilterValue, RacpRequest, RacpResponse, RacpResponseCode, RecordFilter};
use crate::codec::uuid as u;
use crate::model::{Quality, Stream};
use crate::transport::Transport;

impl<T: Transport + ?Sized, S: SessionSink> Session<T, S> {
    pub(super) async fn serve_meter(&mut self) -> Step {
        let chars = self.transport.discover(&self.cfg.peripheral).await?;
        if !has(&chars, u::GLUCOSE_MEASUREMENT) || !has(&chars, u::RECORD_ACCESS_CONTROL_POINT) {
            return Err(Halt::Link("not a glucose meter with a record store".into()));
        }
        self.read_battery(&chars).await?;
        self.subscribe(u::GLUCOSE_MEASUREMENT).await?;
        self.subscribe(u::RECORD_ACCESS_CONTROL_POINT).await?;
        loop {
            self.backfill_meter().await?;
            let poll = self.clock.now()
                + TimeDelta::from_std(self.cfg.meter_poll).unwrap_or(TimeDelta::MAX);
            while let Some((short, value)) = self.value_or_end(poll).await? {
                if short == u::BATTERY_LEVEL {
                    self.battery_value(&value);
                }
            }
        }
    }

    pub(super) async fn backfill_meter(&mut self) -> Step {
        let cursor = self.cursor(Stream::MeterGlucose);
        let filter = match cursor {
            Some(c) => match u16::try_from(c.sequence + 1) {
                Ok(next) => RecordFilter::AtLeast(FilterValue::SequenceNumber(next)),
                Err(_) => return Ok(()),
            },
            None => RecordFilter::All,
        };
        let req = RacpRequest::ReportStoredRecords(filter).encode()?;
        self.write(u::RECORD_ACCESS_CONTROL_POINT, &req).await?;
        let deadline = self.response_deadline();
        let mut got = Vec::new();
        loop {
            let Some((short, value)) = self.value_or_end(deadline).await? else {
                return Err(Halt::Link("RACP response timed out".into()));
            };
            match short {
                u::GLUCOSE_MEASUREMENT => match GlucoseMeasurement::decode(&value) {
                    Ok(m) => got.push((m, value)),
                    Err(_) => self.event(DeviceEventKind::CorruptFrame {
                        characteristic: u::GLUCOSE_MEASUREMENT,
                    }),
                },
                u::RECORD_ACCESS_CONTROL_POINT => match RacpResponse::decode(&value) {
                    Ok(RacpResponse::ResponseCode { code, .. }) => match code {
                        RacpResponseCode::Success | RacpResponseCode::NoRecordsFound => break,
                        other => return Err(Halt::Link(format!("RACP refused: {other:?}"))),
                    },
                    Ok(RacpResponse::NumberOfStoredRecords(_)) => {}
                    Err(e) => return Err(Halt::Link(format!("bad RACP response: {e}"))),
                },
                u::BATTERY_LEVEL => self.battery_value(&value),
                _ => {}
            }
        }
        got.sort_by_key(|(m, _)| m.sequence_number);
        got.dedup_by_key(|(m, _)| m.sequence_number);
        let offset = TimeDelta::minutes(i64::from(self.cfg.meter_utc_offset_min));
        for (m, raw) in got {
            let seq = u64::from(m.sequence_number);
            let Some(local) = m.absolute_time() else {
                continue;
            };
            let time = local.and_utc() - offset;
            if let Some(c) = self.cursor(Stream::MeterGlucose) {
                if seq <= c.sequence {
                    continue;
                }
                if seq > c.sequence + 1 {
                    self.gap(Gap {
                        device: self.cfg.device.clone(),
                        stream: Stream::MeterGlucose,
                        session: None,
                        from: c.time,
                        to: time,
                        first_missing: Some(c.sequence + 1),
                        last_missing: Some(seq - 1),
                        reason: GapReason::NotHeld,
                    });
                }
            }
            let value = m.concentration_mg_dl().unwrap_or(f64::NAN);
            let flagged = m.sensor_status.is_some_and(|s| s.to_bits() != 0);
            self.reading(
                Stream::MeterGlucose,
                value,
                time,
                seq,
                u::GLUCOSE_MEASUREMENT,
                raw,
                None,
                Quality {
                    percent: None,
                    flagged,
                },
            );
        }
        Ok(())
    }
}
