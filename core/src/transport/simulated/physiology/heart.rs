//! Heart: a heart rate that follows the day's activity, the beats behind
//! it, and the rate a chest strap reports.
//!
//! Stepped once a simulated second. The heart rate relaxes towards an
//! activity level plus a slow wander; beats are then placed one RR interval
//! apart, the interval modulated by breathing (respiratory sinus
//! arrhythmia), a ~0.1 Hz baroreflex rhythm and a little jitter, which is
//! what heart-rate variability looks like beat to beat. Straps do not
//! report the instantaneous rate: they average the last few RR intervals
//! and send whole beats per minute (Heart Rate Measurement, 0x2A37), so the
//! reported rate is smooth and integer, as here.

use std::collections::VecDeque;
use std::f64::consts::TAU;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::noise::{Correlated, chance, gauss, normal, uniform};
use crate::error::{Error, Result};
use crate::model::Sample;

/// What the simulated person is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activity {
    /// Asleep (night).
    Sleep,
    /// Awake, sitting or standing.
    Rest,
    /// Walking.
    Walking,
    /// A sustained exercise bout (running, cycling).
    Exercise,
}

/// A simulated wearer's heart.
///
/// Fields are public so tests can switch an effect off; [`HeartModel::new`]
/// rejects values that make no physical sense.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartProfile {
    /// Short stable name, e.g. `"adult"`.
    pub name: &'static str,
    /// Heart rate asleep, bpm.
    pub sleep_bpm: f64,
    /// Heart rate awake at rest, bpm.
    pub rest_bpm: f64,
    /// Heart rate walking, bpm.
    pub walking_bpm: f64,
    /// Heart rate during an exercise bout, bpm.
    pub exercise_bpm: f64,
    /// Amplitude of respiratory sinus arrhythmia at rest, as a fraction of
    /// the RR interval (scaled up asleep, down with exertion).
    pub rsa_fraction: f64,
    /// Amplitude of the ~0.1 Hz (Mayer wave) rhythm, fraction of RR.
    pub lf_fraction: f64,
    /// Standard deviation of beat-to-beat jitter, fraction of RR.
    pub jitter_fraction: f64,
    /// Standard deviation of the slow wander of the rate, bpm.
    pub wander_bpm: f64,
    /// Probability of an exercise bout on a given day.
    pub exercise_p: f64,
    /// How many RR intervals the strap averages for the rate it reports.
    pub strap_beats: usize,
}

impl HeartProfile {
    /// A healthy adult of average fitness.
    pub fn adult() -> Self {
        HeartProfile {
            name: "adult",
            sleep_bpm: 56.0,
            rest_bpm: 70.0,
            walking_bpm: 96.0,
            exercise_bpm: 145.0,
            rsa_fraction: 0.04,
            lf_fraction: 0.02,
            jitter_fraction: 0.012,
            wander_bpm: 3.0,
            exercise_p: 0.5,
            strap_beats: 4,
        }
    }

    /// An older, sedentary adult: higher resting rate, less variability,
    /// rarely exercising.
    pub fn sedentary() -> Self {
        HeartProfile {
            name: "sedentary",
            sleep_bpm: 64.0,
            rest_bpm: 78.0,
            walking_bpm: 100.0,
            exercise_bpm: 125.0,
            rsa_fraction: 0.02,
            lf_fraction: 0.012,
            jitter_fraction: 0.008,
            wander_bpm: 2.5,
            exercise_p: 0.15,
            strap_beats: 4,
        }
    }

    /// Every named profile.
    pub fn all() -> Vec<HeartProfile> {
        vec![Self::adult(), Self::sedentary()]
    }

    fn validate(&self) -> Result<()> {
        let rates = [
            self.sleep_bpm,
            self.rest_bpm,
            self.walking_bpm,
            self.exercise_bpm,
        ];
        let fractions = [self.rsa_fraction, self.lf_fraction, self.jitter_fraction];
        let bad = |rule: &str| {
            Err(Error::InvalidInput(format!(
                "heart profile `{}`: {rule}",
                self.name
            )))
        };
        if rates.iter().any(|r| !(30.0..=220.0).contains(r)) {
            return bad("heart rates must lie in 30-220 bpm");
        }
        if fractions.iter().any(|f| !(0.0..=0.2).contains(f)) {
            return bad("variability fractions must lie in [0, 0.2]");
        }
        if !(self.wander_bpm.is_finite() && self.wander_bpm >= 0.0) {
            return bad("`wander_bpm` must be finite and not negative");
        }
        if !(0.0..=1.0).contains(&self.exercise_p) {
            return bad("`exercise_p` must be a probability in [0, 1]");
        }
        if self.strap_beats == 0 {
            return bad("`strap_beats` must be at least 1");
        }
        Ok(())
    }
}

/// One second of the simulated heart.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartPoint {
    /// Simulated wall-clock time (UTC).
    pub time: DateTime<Utc>,
    /// What the wearer is doing.
    pub activity: Activity,
    /// The underlying heart rate, bpm (before beat-to-beat variability).
    pub true_bpm: f64,
    /// The rate a strap reports: the mean of its last few RR intervals, as
    /// whole beats per minute.
    pub reported_bpm: f64,
    /// RR intervals of the beats that fell in the last second, seconds, in
    /// order (zero, one, or at high rates two or three).
    pub rr_intervals: Vec<f64>,
}

impl HeartPoint {
    /// The strap-reported heart rate as the canonical sample.
    pub fn reported_sample(&self) -> Sample {
        Sample {
            time: self.time,
            value: self.reported_bpm,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Span {
    from: i64,
    to: i64,
    activity: Activity,
}

/// A seeded heart simulator at 1 Hz: same seed and profile, same beats.
#[derive(Debug, Clone)]
pub struct HeartModel {
    profile: HeartProfile,
    rng: ChaCha8Rng,
    start: DateTime<Utc>,
    /// Seconds since `start`.
    second: i64,
    planned_until: i64,
    started: bool,
    spans: Vec<Span>,
    rate: f64,
    wander: Correlated,
    /// Time of the last beat, seconds since `start`.
    last_beat: f64,
    /// Time of the next beat.
    next_beat: f64,
    lf_phase: f64,
    recent_rr: VecDeque<f64>,
    point: HeartPoint,
}

const DAY_S: i64 = 86_400;

impl HeartModel {
    /// A model of `profile`'s wearer whose clock starts at `start`.
    ///
    /// Fails with [`Error::InvalidInput`] for a profile with impossible
    /// values (rates outside 30-220 bpm, a strap averaging zero beats, ...).
    pub fn new(seed: u64, profile: HeartProfile, start: DateTime<Utc>) -> Result<Self> {
        profile.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let wander = Correlated::new(&mut rng, profile.wander_bpm, 120.0);
        let lf_phase = uniform(&mut rng, 0.0, TAU);
        let rate = profile.rest_bpm;
        let mut model = HeartModel {
            rng,
            start,
            second: 0,
            planned_until: 0,
            started: false,
            spans: Vec::new(),
            rate,
            wander,
            last_beat: 0.0,
            next_beat: 60.0 / rate,
            lf_phase,
            recent_rr: VecDeque::new(),
            point: HeartPoint {
                time: start,
                activity: Activity::Rest,
                true_bpm: rate,
                reported_bpm: rate.round(),
                rr_intervals: Vec::new(),
            },
            profile,
        };
        let midnight = model.second_of_midnight(0);
        model.plan_day(midnight);
        model.planned_until = midnight;
        model.rate = model.level(model.activity_at(0));
        model.point.activity = model.activity_at(0);
        model.point.true_bpm = model.rate;
        model.point.reported_bpm = model.rate.round();
        Ok(model)
    }

    /// The profile this model simulates.
    pub fn profile(&self) -> &HeartProfile {
        &self.profile
    }

    /// The next second: the start point first, then one point a second.
    pub fn next_point(&mut self) -> HeartPoint {
        if self.started {
            self.step();
        }
        self.started = true;
        self.point.clone()
    }

    /// The next `count` strap-reported rates as samples (1 Hz).
    pub fn reported_samples(&mut self, count: usize) -> Vec<Sample> {
        (0..count)
            .map(|_| self.next_point().reported_sample())
            .collect()
    }

    fn second_of_midnight(&self, second: i64) -> i64 {
        let t = self.start + TimeDelta::seconds(second);
        second - i64::from(t.num_seconds_from_midnight())
    }

    fn activity_at(&self, second: i64) -> Activity {
        // Later spans are more specific (exercise over walking over sleep).
        self.spans
            .iter()
            .rev()
            .find(|s| (s.from..s.to).contains(&second))
            .map_or(Activity::Rest, |s| s.activity)
    }

    fn level(&self, activity: Activity) -> f64 {
        match activity {
            Activity::Sleep => self.profile.sleep_bpm,
            Activity::Rest => self.profile.rest_bpm,
            Activity::Walking => self.profile.walking_bpm,
            Activity::Exercise => self.profile.exercise_bpm,
        }
    }

    fn plan_day(&mut self, midnight: i64) {
        let rng = &mut self.rng;
        let hours = |h: f64| midnight + (h * 3600.0) as i64;
        let wake = hours(gauss(rng, 6.75, 0.4));
        let bed = hours(gauss(rng, 23.0, 0.5));
        self.spans.push(Span {
            from: midnight,
            to: wake,
            activity: Activity::Sleep,
        });
        self.spans.push(Span {
            from: bed,
            to: midnight + DAY_S,
            activity: Activity::Sleep,
        });
        let walks = 4 + (uniform(rng, 0.0, 5.0) as i64);
        for _ in 0..walks {
            let from = hours(uniform(rng, 7.5, 21.5));
            let to = from + (uniform(rng, 5.0, 25.0) * 60.0) as i64;
            self.spans.push(Span {
                from,
                to,
                activity: Activity::Walking,
            });
        }
        if chance(rng, self.profile.exercise_p) {
            let from = hours(gauss(rng, 18.0, 1.0));
            let to = from + (uniform(rng, 30.0, 60.0) * 60.0) as i64;
            self.spans.push(Span {
                from,
                to,
                activity: Activity::Exercise,
            });
        }
    }

    fn step(&mut self) {
        self.second += 1;
        let midnight = self.second_of_midnight(self.second);
        if midnight > self.planned_until {
            self.planned_until = midnight;
            let horizon = self.second - DAY_S;
            self.spans.retain(|s| s.to >= horizon);
            self.plan_day(midnight);
        }
        let activity = self.activity_at(self.second);
        let target = self.level(activity) + self.wander.step(&mut self.rng);
        // The heart speeds up faster than it recovers.
        let tau = if target > self.rate { 20.0 } else { 45.0 };
        self.rate += (target - self.rate) / tau;

        let (breath_hz, rsa_scale) = match activity {
            Activity::Sleep => (0.22, 1.3),
            Activity::Rest => (0.25, 1.0),
            Activity::Walking => (0.32, 0.5),
            Activity::Exercise => (0.5, 0.2),
        };
        let p = &self.profile;
        let now = self.second as f64;
        let mut rr_intervals = Vec::new();
        while self.next_beat <= now {
            let beat = self.next_beat;
            let rr = beat - self.last_beat;
            rr_intervals.push(rr);
            self.recent_rr.push_back(rr);
            if self.recent_rr.len() > p.strap_beats {
                self.recent_rr.pop_front();
            }
            self.last_beat = beat;
            let modulation = 1.0
                + p.rsa_fraction * rsa_scale * (TAU * breath_hz * beat).sin()
                + p.lf_fraction * (TAU * 0.1 * beat + self.lf_phase).sin()
                + p.jitter_fraction * normal(&mut self.rng);
            self.next_beat = beat + (60.0 / self.rate * modulation).clamp(0.27, 2.2);
        }
        let reported = if self.recent_rr.is_empty() {
            self.point.reported_bpm
        } else {
            let mean = self.recent_rr.iter().sum::<f64>() / self.recent_rr.len() as f64;
            (60.0 / mean).round()
        };
        self.point = HeartPoint {
            time: self.start + TimeDelta::seconds(self.second),
            activity,
            true_bpm: self.rate,
            reported_bpm: reported,
            rr_intervals,
        };
    }
}

impl Iterator for HeartModel {
    type Item = HeartPoint;

    /// Never ends: the heart beats as long as the caller wants.
    fn next(&mut self) -> Option<HeartPoint> {
        Some(self.next_point())
    }
}
