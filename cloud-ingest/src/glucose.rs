//! The one bridge between the read-side formats (dashboard, FHIR,
//! Nightscout, CSV) and the readings store: glucose of one patient over a
//! period, and glucose arriving from an import or a Nightscout uploader
//! stored as a batch of the same readings table, so metrics, reports and
//! alerts see it like any phone's readings.

use chrono::{DateTime, TimeDelta, Utc};
use vigil_model::metrics::{GlucoseMetrics, consensus_metrics};
use vigil_model::precedence::Quantity;
use vigil_model::reading::{Sample, Stream};
use vigil_model::wire::{BatchAck, BatchId, PROTOCOL_VERSION};

use crate::domain::DataPoint;
use crate::domain::PatientId;
use crate::error::{Error, Result};
use crate::storage::{NewBatch, NewGroup, NewReading, Storage, StoredReading};

/// The CGM Measurement characteristic (0x2AA7): what imported glucose is
/// filed under, as it is what a CGM would have sent.
pub(crate) const CGM_MEASUREMENT: u16 = 0x2AA7;

/// The patient's glucose trend in `[from, to)`, time order: interstitial
/// glucose resolved across its sources (the phone's CGM, an uploader's copy,
/// an import, a new sensor session's overlap with the old one's backfill) by
/// the patient's precedence policy, one value per moment. Fingersticks are
/// confirmation points, not the trend: they are in the readings endpoint.
pub fn points(
    s: &dyn Storage,
    patient: PatientId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<DataPoint>> {
    let resolved = crate::resolved::resolve(
        s,
        patient,
        Quantity::Glucose,
        Some(&[Stream::Glucose]),
        from,
        to,
    )?;
    Ok(resolved.series.into_iter().map(point).collect())
}

/// One resolved reading as a point of the trend: the one mapping every
/// reader and the day summaries share.
pub fn point(r: StoredReading) -> DataPoint {
    DataPoint {
        time: r.time,
        mg_dl: r.value,
        device: r.device,
        held_back: r.held_back,
    }
}

/// The CGM sampling interval the consensus metrics and wear are counted in:
/// every glycaemic figure the service shows (reads, FHIR, the report, the
/// per-day summaries) takes its sensor time from this one value.
pub const CGM_INTERVAL: TimeDelta = TimeDelta::minutes(5);

/// The consensus metrics of a period's resolved trend ([`samples`] of
/// [`points`]), as every reader reports them: the metrics endpoint, FHIR's
/// summary and the report. A period without readings is `NotFound`: there
/// is nothing to summarise.
pub fn period_metrics(samples: &[Sample]) -> Result<GlucoseMetrics> {
    if samples.is_empty() {
        return Err(Error::NotFound("no glucose readings in that period".into()));
    }
    consensus_metrics(samples, CGM_INTERVAL).map_err(|e| Error::InvalidInput(e.to_string()))
}

/// The same as samples for `vigil_model::metrics`.
pub fn samples(points: &[DataPoint]) -> Vec<Sample> {
    points
        .iter()
        .map(|p| Sample {
            time: p.time,
            value: p.mg_dl,
        })
        .collect()
}

/// Stores imported glucose as one batch from `device`. The sequence of
/// each reading is its time in milliseconds, so the same time from the
/// same source is stored once (a second upload is `already stored`).
pub fn store(
    s: &dyn Storage,
    patient: PatientId,
    device: &str,
    samples: &[Sample],
) -> Result<BatchAck> {
    let readings = samples
        .iter()
        .map(|x| NewReading {
            seq: u64::try_from(x.time.timestamp_millis()).unwrap_or(0),
            time: x.time,
            value: x.value,
            quality_percent: None,
            quality_flagged: false,
            held_back: false,
            raw: None,
        })
        .collect();
    let batch = NewBatch {
        v: PROTOCOL_VERSION,
        id: BatchId::random(),
        patient,
        device: device.to_owned(),
        received_at: Utc::now(),
        groups: vec![NewGroup {
            stream: Stream::Glucose,
            session: None,
            characteristic: CGM_MEASUREMENT,
            tolerance: None,
            readings,
            rejected: Vec::new(),
        }],
    };
    let ack = s.store_batch(&batch)?;
    // The triage list's day summaries of the days just written.
    crate::glucose_days::after_batch(s, &batch)?;
    Ok(ack)
}
