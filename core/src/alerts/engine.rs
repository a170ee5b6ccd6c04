//! The alert state machine: one per patient (or device), fed every raw
//! reading, device event and clock tick, answering with the events to raise.
//!
//! Time-driven alerts (signal loss, session ending) are due at a moment that
//! no reading marks. The engine emits one when its clock is strictly past that
//! moment, stamped with the moment itself, whether the clock moved by a tick
//! or by the next reading: so the events never depend on how often the host
//! ticks (a property test holds it to that).
//!
//! Rate rules (fast fall, fast rise, predicted urgent low) need a rate, which
//! needs `rate_min_readings` readings inside the rate window. While there is
//! none (the first minutes, or just after a signal gap) those rules are not
//! evaluated: nothing starts, and an episode in progress neither re-alerts nor
//! ends until a rate says so.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};

use super::rules::{Threshold, projected_mg_dl, slope_mg_dl_per_min};
use super::{AlertConfig, AlertEvent, AlertKind, Phase, alert_id};
use crate::error::{Error, Result};
use crate::model::Sample;

/// Number of alert kinds (length of [`AlertKind::ALL`]).
const KINDS: usize = AlertKind::ALL.len();

/// One kind's episode state.
#[derive(Debug, Clone, Default)]
struct Episode {
    /// The condition holds (or has not yet cleared its hysteresis).
    active: bool,
    /// When the condition began (time-driven kinds raise from here).
    since: Option<DateTime<Utc>>,
    /// Id once the episode has been announced; `None` while silenced so far.
    id: Option<String>,
    /// Time of the last start or re-alert.
    last_raised: Option<DateTime<Utc>>,
}

/// Values an event carries besides its kind, phase and time.
#[derive(Debug, Clone, Copy, Default)]
struct Payload {
    glucose: Option<f64>,
    rate: Option<f64>,
    battery: Option<f64>,
    expiry: Option<DateTime<Utc>>,
}

/// The alert engine for one key (patient or device).
///
/// Guarantees: deterministic (the same inputs in the same order give the
/// same events, ids included); events of one call are in time order; every
/// `Start` is followed by at most one `End` with its id and nothing after it;
/// memory stays bounded by one rate window of readings.
#[derive(Debug, Clone)]
pub struct AlertEngine {
    config: AlertConfig,
    key: String,
    episodes: [Episode; KINDS],
    snoozed_until: [Option<DateTime<Utc>>; KINDS],
    /// Glucose readings within the rate window of the newest one.
    window: VecDeque<Sample>,
    /// Newest glucose reading's time.
    last_glucose: Option<DateTime<Utc>>,
    /// Current sensor session's expiry and when the engine learned it.
    session: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl AlertEngine {
    /// An engine with `config` for `key`, the patient or device id that makes
    /// alert ids unique across patients. Refuses an invalid configuration
    /// ([`AlertConfig::validate`]).
    pub fn new(config: AlertConfig, key: impl Into<String>) -> Result<Self> {
        config.validate()?;
        Ok(AlertEngine {
            config,
            key: key.into(),
            episodes: Default::default(),
            snoozed_until: [None; KINDS],
            window: VecDeque::new(),
            last_glucose: None,
            session: None,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    /// Whether an episode of `kind` is in progress (announced or silenced).
    pub fn is_active(&self, kind: AlertKind) -> bool {
        self.episode(kind).active
    }

    /// Silences `kind` until `until` (exclusive): no start or re-alert of it
    /// is raised before then; an end still is. Replaces any earlier snooze of
    /// that kind. Once it runs out, an episode not yet announced starts at the
    /// next reading meeting its rule, and an announced one re-alerts on its
    /// usual schedule (the first reading meeting the rule at least one
    /// re-alert interval after its last raise); time-driven kinds raise at
    /// `until` itself if they are still due.
    pub fn snooze(&mut self, kind: AlertKind, until: DateTime<Utc>) {
        if let Some(s) = self.snoozed_until.get_mut(kind.index()) {
            *s = Some(until);
        }
    }

    /// Lifts a snooze of `kind`.
    pub fn clear_snooze(&mut self, kind: AlertKind) {
        if let Some(s) = self.snoozed_until.get_mut(kind.index()) {
            *s = None;
        }
    }

    /// Evaluates every glucose rule on one raw reading (mg/dL).
    ///
    /// First raises what fell due since the previous reading (signal loss at
    /// the moment it ran out, its re-alerts, a session warning), then ends
    /// signal loss, then evaluates urgent low, low, high, fast fall, fast rise
    /// and predicted urgent low, in that order.
    ///
    /// Errors ([`Error::InvalidInput`], engine unchanged): a value that is not
    /// a finite positive number, or a reading not after the previous one.
    /// Alerts concern the present, so backfilled history goes to the buffer,
    /// not here.
    pub fn on_glucose(&mut self, sample: Sample) -> Result<Vec<AlertEvent>> {
        if !(sample.value.is_finite() && sample.value > 0.0) {
            return Err(Error::InvalidInput(
                "alert engine: glucose must be a finite positive number of mg/dL".into(),
            ));
        }
        if let Some(last) = self.last_glucose
            && sample.time <= last
        {
            return Err(Error::InvalidInput(format!(
                "alert engine: glucose reading at {} is not after the previous one at {}",
                sample.time.to_rfc3339(),
                last.to_rfc3339()
            )));
        }
        let mut out = Vec::new();
        let (t, v) = (sample.time, sample.value);
        self.advance(t, &mut out);
        let glucose = Payload {
            glucose: Some(v),
            ..Payload::default()
        };
        if self.is_active(AlertKind::SignalLoss) {
            self.finish(AlertKind::SignalLoss, t, glucose, &mut out);
        }

        self.last_glucose = Some(t);
        self.window.push_back(sample);
        let oldest = t - self.config.rate_window.time_delta();
        while self.window.front().is_some_and(|s| s.time < oldest) {
            self.window.pop_front();
        }

        let c = &self.config;
        let margin = c.hysteresis_mg_dl;
        let urgent = Threshold::Below {
            threshold: c.urgent_low_mg_dl,
            margin,
        };
        let low = Threshold::Below {
            threshold: c.low_mg_dl,
            margin,
        };
        let high = Threshold::Above {
            threshold: c.high_mg_dl,
            margin,
        };
        self.level(AlertKind::UrgentLow, urgent, v, t, glucose, &mut out);
        self.level(AlertKind::Low, low, v, t, glucose, &mut out);
        self.level(AlertKind::High, high, v, t, glucose, &mut out);

        let c = &self.config;
        if let Some(rate) = slope_mg_dl_per_min(self.window.iter(), c.rate_min_readings as usize) {
            let fast = c.fast_rate_mg_dl_per_min;
            let rate_margin = c.rate_hysteresis_mg_dl_per_min;
            let fall = Threshold::Below {
                threshold: -fast,
                margin: rate_margin,
            };
            let rise = Threshold::Above {
                threshold: fast,
                margin: rate_margin,
            };
            let predicted = projected_mg_dl(v, rate, c.prediction_horizon.time_delta());
            let soon = Threshold::Below {
                threshold: c.urgent_low_mg_dl,
                margin,
            };
            let with_rate = Payload {
                rate: Some(rate),
                ..glucose
            };
            self.level(AlertKind::FastFall, fall, rate, t, with_rate, &mut out);
            self.level(AlertKind::FastRise, rise, rate, t, with_rate, &mut out);
            self.level(
                AlertKind::PredictedUrgentLow,
                soon,
                predicted,
                t,
                with_rate,
                &mut out,
            );
        }
        Ok(out)
    }

    /// The glucose readings that follow come from another source (another
    /// CGM, a new sensor session): forgets the rate window, so no slope is
    /// drawn across two sensors' calibrations (their offset would read as a
    /// fast rise or fall). Rate rules wait for the new source's own readings,
    /// as after a signal gap; level episodes and the signal clock go on.
    pub fn on_source_change(&mut self) {
        self.window.clear();
    }

    /// Moves the engine's clock to `now` without a reading: raises the
    /// time-driven alerts due strictly before `now` (signal loss, its
    /// re-alerts, a session warning). A `now` in the past does nothing;
    /// before the first glucose reading there is no signal to lose.
    pub fn on_tick(&mut self, now: DateTime<Utc>) -> Vec<AlertEvent> {
        let mut out = Vec::new();
        self.advance(now, &mut out);
        out
    }

    /// The earliest time at which [`AlertEngine::on_tick`] could raise
    /// something (a signal loss, its re-alert, a session warning), or
    /// `None` when no time-driven alert can come without a new input.
    ///
    /// A caller that ticks just after this instant, and again after each
    /// input, raises every time-driven alert as a fixed-period ticker
    /// would (at the same event times) without waking in between: the
    /// phone's timer is armed for the next deadline, not polled. The
    /// answer is never later than the next alert; it may be earlier (a
    /// snooze found at the deadline moves the next one on).
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let mut next: Option<DateTime<Utc>> = None;
        let mut consider = |t: Option<DateTime<Utc>>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        if let Some(last) = self.last_glucose {
            let kind = AlertKind::SignalLoss;
            if self.is_active(kind) {
                consider(self.due_candidate(kind));
            } else {
                consider(Some(last + self.config.signal_loss_after.time_delta()));
            }
        }
        if let Some((expiry, learned)) = self.session {
            let kind = AlertKind::SensorSessionEnding;
            if self.is_active(kind) {
                consider(self.due_candidate(kind));
            } else {
                consider(Some(
                    (expiry - self.config.sensor_ending_warning.time_delta()).max(learned),
                ));
            }
        }
        next
    }

    /// When [`AlertEngine::raise_due`] would next raise `kind` (active).
    fn due_candidate(&self, kind: AlertKind) -> Option<DateTime<Utc>> {
        let ep = self.episode(kind);
        let candidate = match (
            &ep.id,
            ep.since,
            ep.last_raised,
            self.realert_interval(kind),
        ) {
            (None, Some(since), _, _) => since,
            (Some(_), _, Some(last), Some(every)) => last + every,
            _ => return None,
        };
        Some(match self.snoozed_until[kind.index()] {
            Some(until) if candidate < until => until,
            _ => candidate,
        })
    }

    /// A device battery level (percent) at `time`: battery low starts below
    /// the threshold and ends once back above it by the margin. Raised once
    /// per episode (a battery does not need re-alerts).
    ///
    /// Errors ([`Error::InvalidInput`]): a level outside `0..=100`.
    pub fn on_battery(&mut self, time: DateTime<Utc>, percent: f64) -> Result<Vec<AlertEvent>> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(Error::InvalidInput(
                "alert engine: battery level must be within 0..=100 %".into(),
            ));
        }
        let mut out = Vec::new();
        let rule = Threshold::Below {
            threshold: self.config.battery_low_pct,
            margin: self.config.battery_hysteresis_pct,
        };
        let payload = Payload {
            battery: Some(percent),
            ..Payload::default()
        };
        self.level(
            AlertKind::BatteryLow,
            rule,
            percent,
            time,
            payload,
            &mut out,
        );
        Ok(out)
    }

    /// The current sensor session, learned at `time`, expires at `expires_at`
    /// (from CGM Session Start Time + Session Run Time). Session ending starts
    /// `sensor_ending_warning` before expiry (or at `time` if that is already
    /// past) and ends when a new session far enough from expiry is reported.
    pub fn on_sensor_session(
        &mut self,
        time: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Vec<AlertEvent> {
        let mut out = Vec::new();
        let warn_at = expires_at - self.config.sensor_ending_warning.time_delta();
        let kind = AlertKind::SensorSessionEnding;
        if self.is_active(kind) && warn_at > time {
            let payload = Payload {
                expiry: Some(expires_at),
                ..Payload::default()
            };
            self.finish(kind, time, payload, &mut out);
        }
        self.session = Some((expires_at, time));
        // A warning already due when learned is raised now, not a tick later.
        self.advance_session(time, true, &mut out);
        out
    }

    fn episode(&self, kind: AlertKind) -> &Episode {
        // `index()` is always within `ALL`, the array's length.
        &self.episodes[kind.index()]
    }

    fn silenced(&self, kind: AlertKind, time: DateTime<Utc>) -> bool {
        let snoozed = self.snoozed_until[kind.index()].is_some_and(|until| time < until);
        let under_urgent = matches!(kind, AlertKind::Low | AlertKind::PredictedUrgentLow)
            && self.is_active(AlertKind::UrgentLow);
        snoozed || under_urgent
    }

    fn realert_interval(&self, kind: AlertKind) -> Option<TimeDelta> {
        let c = &self.config;
        match kind {
            AlertKind::UrgentLow
            | AlertKind::Low
            | AlertKind::FastFall
            | AlertKind::PredictedUrgentLow => Some(c.realert_low.time_delta()),
            AlertKind::High | AlertKind::FastRise => Some(c.realert_high.time_delta()),
            AlertKind::SignalLoss => Some(c.realert_signal_loss.time_delta()),
            AlertKind::SensorSessionEnding | AlertKind::BatteryLow => None,
        }
    }

    /// Steps a threshold rule on one value observed at `time`.
    fn level(
        &mut self,
        kind: AlertKind,
        rule: Threshold,
        value: f64,
        time: DateTime<Utc>,
        payload: Payload,
        out: &mut Vec<AlertEvent>,
    ) {
        if self.is_active(kind) && rule.cleared(value) {
            self.finish(kind, time, payload, out);
            return;
        }
        if !rule.met(value) {
            return;
        }
        let ep = &mut self.episodes[kind.index()];
        if !ep.active {
            ep.active = true;
            ep.since = Some(time);
        }
        if self.silenced(kind, time) {
            return;
        }
        let realert = self.realert_interval(kind);
        let ep = &self.episodes[kind.index()];
        let phase = match (&ep.id, ep.last_raised, realert) {
            (None, _, _) => Phase::Start,
            (Some(_), Some(last), Some(every)) if time - last >= every => Phase::Realert,
            _ => return,
        };
        self.raise(kind, phase, time, payload, out);
    }

    /// Records and emits a start or re-alert of `kind` at `time`.
    fn raise(
        &mut self,
        kind: AlertKind,
        phase: Phase,
        time: DateTime<Utc>,
        payload: Payload,
        out: &mut Vec<AlertEvent>,
    ) {
        let key = &self.key;
        let ep = &mut self.episodes[kind.index()];
        let id = ep
            .id
            .get_or_insert_with(|| alert_id(key, kind, time))
            .clone();
        ep.last_raised = Some(time);
        out.push(event(id, kind, phase, time, payload));
    }

    /// Ends the episode of `kind`; emits `End` only if it was announced.
    fn finish(
        &mut self,
        kind: AlertKind,
        time: DateTime<Utc>,
        payload: Payload,
        out: &mut Vec<AlertEvent>,
    ) {
        let ep = std::mem::take(&mut self.episodes[kind.index()]);
        if let Some(id) = ep.id {
            out.push(event(id, kind, Phase::End, time, payload));
        }
    }

    /// Raises the time-driven alerts due strictly before `now`.
    fn advance(&mut self, now: DateTime<Utc>, out: &mut Vec<AlertEvent>) {
        if let Some(last) = self.last_glucose {
            let lost_at = last + self.config.signal_loss_after.time_delta();
            let kind = AlertKind::SignalLoss;
            if now > lost_at && !self.is_active(kind) {
                let ep = &mut self.episodes[kind.index()];
                ep.active = true;
                ep.since = Some(lost_at);
            }
            if self.is_active(kind) {
                self.raise_due(kind, now, false, Payload::default(), out);
            }
        }
        self.advance_session(now, false, out);
    }

    fn advance_session(&mut self, now: DateTime<Utc>, inclusive: bool, out: &mut Vec<AlertEvent>) {
        let Some((expiry, learned)) = self.session else {
            return;
        };
        let kind = AlertKind::SensorSessionEnding;
        let due = (expiry - self.config.sensor_ending_warning.time_delta()).max(learned);
        if !self.is_active(kind) && (due < now || (inclusive && due == now)) {
            let ep = &mut self.episodes[kind.index()];
            ep.active = true;
            ep.since = Some(due);
        }
        if self.is_active(kind) {
            let payload = Payload {
                expiry: Some(expiry),
                ..Payload::default()
            };
            self.raise_due(kind, now, inclusive, payload, out);
        }
    }

    /// For an active time-driven episode, raises its start (once unsilenced)
    /// and every re-alert due before `now` (or at `now` if `inclusive`).
    fn raise_due(
        &mut self,
        kind: AlertKind,
        now: DateTime<Utc>,
        inclusive: bool,
        payload: Payload,
        out: &mut Vec<AlertEvent>,
    ) {
        let realert = self.realert_interval(kind);
        loop {
            let ep = self.episode(kind);
            let candidate = match (&ep.id, ep.since, ep.last_raised, realert) {
                (None, Some(since), _, _) => since,
                (Some(_), _, Some(last), Some(every)) => last + every,
                _ => return,
            };
            // A snooze moves the raise to the moment it runs out.
            let candidate = match self.snoozed_until[kind.index()] {
                Some(until) if candidate < until => until,
                _ => candidate,
            };
            if candidate > now || (candidate == now && !inclusive) {
                return;
            }
            let phase = if self.episode(kind).id.is_none() {
                Phase::Start
            } else {
                Phase::Realert
            };
            self.raise(kind, phase, candidate, payload, out);
        }
    }
}

fn event(id: String, kind: AlertKind, phase: Phase, time: DateTime<Utc>, p: Payload) -> AlertEvent {
    AlertEvent {
        id,
        kind,
        phase,
        time,
        glucose_mg_dl: p.glucose,
        rate_mg_dl_per_min: p.rate,
        battery_pct: p.battery,
        session_expires_at: p.expiry,
        device: None,
    }
}
