//! Glucose: blood glucose from meals, insulin, exercise and the dawn
//! phenomenon, and the CGM reading that lags, drifts and sometimes lies.
//!
//! The body is stepped once a simulated minute (Euler; every time constant
//! is several minutes, so one-minute steps are stable and cheap). The
//! simulated patient also acts on what the sensor shows, as real ones do:
//! boluses for meals with a carbohydrate estimate that is off, corrections
//! of highs, and fast carbohydrates some minutes after a low. That feedback
//! is what makes hypoglycaemia and rebound highs appear without scripting.

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::noise::{Correlated, chance, gamma2, gauss, uniform};
use crate::error::{Error, Result};
use crate::model::Sample;

/// Lowest value a CGM reports (readings below show as this floor).
const SENSOR_FLOOR_MGDL: f64 = 40.0;
/// Highest value a CGM reports.
const SENSOR_CEILING_MGDL: f64 = 400.0;
/// Peak time of rapid-acting insulin action, minutes (gamma k = 2, so the
/// action lasts about six hours, as labelled for lispro and aspart).
const INSULIN_PEAK_MIN: f64 = 55.0;
/// Events older than this no longer act and are dropped.
const EVENT_HORIZON_MIN: f64 = 10.0 * 60.0;

/// How often the simulated CGM reports a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleInterval {
    /// One reading a minute (e.g. FreeStyle Libre 3, Dexcom G7 raw stream).
    OneMinute,
    /// One reading every five minutes (most CGMs).
    FiveMinutes,
}

impl SampleInterval {
    /// Length of the interval in minutes.
    pub fn minutes(self) -> u32 {
        match self {
            SampleInterval::OneMinute => 1,
            SampleInterval::FiveMinutes => 5,
        }
    }

    /// Length of the interval as a duration.
    pub fn duration(self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.minutes()))
    }
}

/// A simulated person with diabetes: their physiology, habits and sensor.
///
/// Fields are public so tests and demos can switch one effect off (e.g.
/// `noise_sd_mgdl = 0.0`); [`GlucoseModel::new`] rejects values that make no
/// physical sense. Times of day are UTC wall-clock hours: the simulated
/// patient lives at UTC+0.
#[derive(Debug, Clone, PartialEq)]
pub struct GlucoseProfile {
    /// Short stable name, e.g. `"t1-well-controlled"`.
    pub name: &'static str,
    /// Fasting glucose the body settles to without disturbances, mg/dL.
    pub equilibrium_mgdl: f64,
    /// Insulin-independent return towards equilibrium, per minute (higher
    /// in type 2, where the pancreas still answers to glucose).
    pub glucose_effectiveness: f64,
    /// Constant mismatch between basal insulin and liver output, mg/dL/min
    /// (positive: basal too low).
    pub basal_mismatch: f64,
    /// Standard deviation of slow day-to-day variation in that balance
    /// (stress, illness, hormones), mg/dL/min, correlation time one hour.
    pub drift_sd: f64,
    /// Glucose rise per gram of carbohydrate absorbed, mg/dL.
    pub carb_rise_mgdl_per_g: f64,
    /// Glucose fall per unit of insulin, mg/dL (insulin sensitivity factor).
    pub insulin_sensitivity: f64,
    /// Whether the patient boluses rapid-acting insulin (type 1 or
    /// insulin-treated type 2); without, meals are met only by
    /// glucose effectiveness.
    pub boluses: bool,
    /// Grams per unit the patient doses with (their carb ratio setting).
    pub carb_ratio: f64,
    /// Relative standard deviation of the patient's carb estimate.
    pub carb_estimate_sd: f64,
    /// Mean minutes between meal start and bolus (negative: pre-bolus).
    pub bolus_delay_mean_min: f64,
    /// Standard deviation of that delay, minutes.
    pub bolus_delay_sd_min: f64,
    /// Probability that a meal's bolus is forgotten.
    pub missed_bolus_p: f64,
    /// Scale of meal sizes (1.0: 45 / 60 / 70 g for the three meals).
    pub meal_scale: f64,
    /// Probability of an afternoon snack on a given day.
    pub snack_p: f64,
    /// Sensor glucose above which the patient corrects, mg/dL (only when
    /// no insulin was given for three hours).
    pub correction_threshold_mgdl: f64,
    /// Fraction of the textbook correction dose the patient takes (above
    /// 1.0: over-corrects, a common cause of lows).
    pub correction_factor: f64,
    /// Sensor glucose below which the patient eats fast carbohydrates.
    pub hypo_treat_threshold_mgdl: f64,
    /// Minutes between a low showing and the treatment being eaten.
    pub hypo_reaction_min: f64,
    /// Peak extra glucose rise of the dawn phenomenon (around 06:00),
    /// mg/dL/min.
    pub dawn_mgdl_per_min: f64,
    /// Probability of an exercise bout (late afternoon) on a given day.
    pub exercise_p: f64,
    /// Probability of a compression low on a given night.
    pub compression_p: f64,
    /// Time constant of the blood-to-interstitial lag, minutes.
    pub lag_min: f64,
    /// Standard deviation of the sensor error, mg/dL.
    pub noise_sd_mgdl: f64,
    /// Correlation time of the sensor error, minutes.
    pub noise_tau_min: f64,
}

impl GlucoseProfile {
    /// Type 1 on multiple daily injections or a pump, good habits:
    /// pre-bolus, fair carb counting, cautious corrections.
    pub fn well_controlled_type1() -> Self {
        GlucoseProfile {
            name: "t1-well-controlled",
            equilibrium_mgdl: 120.0,
            glucose_effectiveness: 0.002,
            basal_mismatch: 0.0,
            drift_sd: 0.18,
            carb_rise_mgdl_per_g: 4.0,
            insulin_sensitivity: 45.0,
            boluses: true,
            carb_ratio: 11.0,
            carb_estimate_sd: 0.25,
            bolus_delay_mean_min: -8.0,
            bolus_delay_sd_min: 8.0,
            missed_bolus_p: 0.02,
            meal_scale: 1.0,
            snack_p: 0.3,
            correction_threshold_mgdl: 200.0,
            correction_factor: 0.8,
            hypo_treat_threshold_mgdl: 72.0,
            hypo_reaction_min: 5.0,
            dawn_mgdl_per_min: 0.15,
            exercise_p: 0.4,
            compression_p: 0.1,
            lag_min: 7.0,
            noise_sd_mgdl: 3.0,
            noise_tau_min: 25.0,
        }
    }

    /// Type 1 with erratic habits: late and forgotten boluses, rough carb
    /// counting, over-corrections, slow reaction to lows. Expect highs and
    /// frequent hypoglycaemia.
    pub fn poorly_controlled_type1() -> Self {
        GlucoseProfile {
            name: "t1-poorly-controlled",
            equilibrium_mgdl: 140.0,
            glucose_effectiveness: 0.0015,
            basal_mismatch: 0.02,
            drift_sd: 0.25,
            carb_rise_mgdl_per_g: 4.5,
            insulin_sensitivity: 55.0,
            boluses: true,
            carb_ratio: 10.0,
            carb_estimate_sd: 0.4,
            bolus_delay_mean_min: 15.0,
            bolus_delay_sd_min: 15.0,
            missed_bolus_p: 0.12,
            meal_scale: 1.2,
            snack_p: 0.6,
            correction_threshold_mgdl: 240.0,
            correction_factor: 1.4,
            hypo_treat_threshold_mgdl: 65.0,
            hypo_reaction_min: 20.0,
            dawn_mgdl_per_min: 0.25,
            exercise_p: 0.25,
            compression_p: 0.2,
            lag_min: 8.0,
            noise_sd_mgdl: 4.0,
            noise_tau_min: 25.0,
        }
    }

    /// Type 2 on oral medication (no bolus insulin): a higher fasting level,
    /// slow and large post-meal rises, almost no hypoglycaemia.
    pub fn type2() -> Self {
        GlucoseProfile {
            name: "t2-oral",
            equilibrium_mgdl: 135.0,
            glucose_effectiveness: 0.009,
            basal_mismatch: 0.0,
            drift_sd: 0.15,
            carb_rise_mgdl_per_g: 2.2,
            insulin_sensitivity: 30.0,
            boluses: false,
            carb_ratio: 10.0,
            carb_estimate_sd: 0.0,
            bolus_delay_mean_min: 0.0,
            bolus_delay_sd_min: 0.0,
            missed_bolus_p: 0.0,
            meal_scale: 1.0,
            snack_p: 0.4,
            correction_threshold_mgdl: 1000.0,
            correction_factor: 0.0,
            hypo_treat_threshold_mgdl: 70.0,
            hypo_reaction_min: 10.0,
            dawn_mgdl_per_min: 0.2,
            exercise_p: 0.3,
            compression_p: 0.1,
            lag_min: 7.0,
            noise_sd_mgdl: 3.0,
            noise_tau_min: 25.0,
        }
    }

    /// Every named profile, for tests and benchmarks.
    pub fn all() -> Vec<GlucoseProfile> {
        vec![
            Self::well_controlled_type1(),
            Self::poorly_controlled_type1(),
            Self::type2(),
        ]
    }

    fn validate(&self) -> Result<()> {
        let positive = [
            ("carb_rise_mgdl_per_g", self.carb_rise_mgdl_per_g),
            ("insulin_sensitivity", self.insulin_sensitivity),
            ("carb_ratio", self.carb_ratio),
            ("equilibrium_mgdl", self.equilibrium_mgdl),
        ];
        let non_negative = [
            ("glucose_effectiveness", self.glucose_effectiveness),
            ("drift_sd", self.drift_sd),
            ("carb_estimate_sd", self.carb_estimate_sd),
            ("bolus_delay_sd_min", self.bolus_delay_sd_min),
            ("meal_scale", self.meal_scale),
            ("correction_factor", self.correction_factor),
            ("hypo_reaction_min", self.hypo_reaction_min),
            ("dawn_mgdl_per_min", self.dawn_mgdl_per_min),
            ("noise_sd_mgdl", self.noise_sd_mgdl),
            ("noise_tau_min", self.noise_tau_min),
        ];
        let probabilities = [
            ("missed_bolus_p", self.missed_bolus_p),
            ("snack_p", self.snack_p),
            ("exercise_p", self.exercise_p),
            ("compression_p", self.compression_p),
        ];
        let bad = |field: &str, rule: &str| {
            Err(Error::InvalidInput(format!(
                "glucose profile `{}`: `{field}` must be {rule}",
                self.name
            )))
        };
        for (field, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return bad(field, "finite and positive");
            }
        }
        for (field, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return bad(field, "finite and not negative");
            }
        }
        for (field, v) in probabilities {
            if !(0.0..=1.0).contains(&v) {
                return bad(field, "a probability in [0, 1]");
            }
        }
        // Euler steps of one minute need a lag of at least one minute.
        if !(self.lag_min.is_finite() && self.lag_min >= 1.0) {
            return bad("lag_min", "at least 1 minute");
        }
        let finite = [
            self.basal_mismatch,
            self.bolus_delay_mean_min,
            self.correction_threshold_mgdl,
            self.hypo_treat_threshold_mgdl,
        ];
        if finite.iter().any(|v| !v.is_finite()) {
            return bad("thresholds and delays", "finite");
        }
        Ok(())
    }
}

/// The state of the simulated patient and sensor at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlucosePoint {
    /// Simulated wall-clock time (UTC).
    pub time: DateTime<Utc>,
    /// True blood glucose, mg/dL.
    pub blood_mgdl: f64,
    /// Interstitial glucose (blood glucose seen through the lag), mg/dL.
    pub interstitial_mgdl: f64,
    /// What the CGM reports: interstitial glucose plus sensor error and
    /// artefacts, rounded to whole mg/dL and held within 40-400 mg/dL.
    pub sensor_mgdl: f64,
    /// A compression artefact is pulling the sensor value down.
    pub compression: bool,
}

impl GlucosePoint {
    /// The sensor reading as the canonical sample that reduction, metrics
    /// and alerts consume.
    pub fn sensor_sample(&self) -> Sample {
        Sample {
            time: self.time,
            value: self.sensor_mgdl,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Carbs {
    at: f64,
    grams: f64,
    tau: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bolus {
    at: f64,
    units: f64,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    from: f64,
    to: f64,
    /// Exercise: glucose uptake in mg/dL/min. Compression: depth in mg/dL.
    size: f64,
}

/// A seeded glucose simulator: same seed and profile, same trace, always.
///
/// Iterating yields the point at the start time, then one point every
/// [`SampleInterval`]; [`GlucoseModel::advance`] steps by any whole number
/// of minutes instead.
#[derive(Debug, Clone)]
pub struct GlucoseModel {
    profile: GlucoseProfile,
    rng: ChaCha8Rng,
    start: DateTime<Utc>,
    interval: SampleInterval,
    /// Minutes since `start`.
    minute: i64,
    /// Start minute of the last planned day.
    planned_until: i64,
    started: bool,
    blood: f64,
    interstitial: f64,
    sensor_error: Correlated,
    drift: Correlated,
    sensor: f64,
    compression: bool,
    carbs: Vec<Carbs>,
    boluses: Vec<Bolus>,
    exercise: Vec<Window>,
    compressions: Vec<Window>,
    last_insulin: f64,
    last_treatment: f64,
}

impl GlucoseModel {
    /// A model of `profile`'s patient whose clock starts at `start`,
    /// reporting every `interval`.
    ///
    /// Fails with [`Error::InvalidInput`] when the profile has a value that
    /// makes no physical sense (negative noise, a probability above one, a
    /// lag under one minute, ...).
    pub fn new(
        seed: u64,
        profile: GlucoseProfile,
        start: DateTime<Utc>,
        interval: SampleInterval,
    ) -> Result<Self> {
        profile.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let sensor_error = Correlated::new(&mut rng, profile.noise_sd_mgdl, profile.noise_tau_min);
        let drift = Correlated::new(&mut rng, profile.drift_sd, 60.0);
        let blood = gauss(&mut rng, profile.equilibrium_mgdl, 10.0).clamp(80.0, 250.0);
        let mut model = GlucoseModel {
            rng,
            start,
            interval,
            minute: 0,
            planned_until: 0,
            started: false,
            blood,
            interstitial: blood,
            sensor_error,
            drift,
            sensor: blood,
            compression: false,
            carbs: Vec::new(),
            boluses: Vec::new(),
            exercise: Vec::new(),
            compressions: Vec::new(),
            last_insulin: f64::NEG_INFINITY,
            last_treatment: f64::NEG_INFINITY,
            profile,
        };
        let midnight = model.minute_of_midnight(0);
        model.plan_day(midnight);
        model.planned_until = midnight;
        model.sensor = model.read_sensor(0.0);
        Ok(model)
    }

    /// The profile this model simulates.
    pub fn profile(&self) -> &GlucoseProfile {
        &self.profile
    }

    /// The current point, without advancing.
    pub fn point(&self) -> GlucosePoint {
        GlucosePoint {
            time: self.start + TimeDelta::minutes(self.minute),
            blood_mgdl: self.blood,
            interstitial_mgdl: self.interstitial,
            sensor_mgdl: self.sensor,
            compression: self.compression,
        }
    }

    /// Advances the simulated clock by `minutes` and returns the new point.
    pub fn advance(&mut self, minutes: u32) -> GlucosePoint {
        for _ in 0..minutes {
            self.step();
        }
        self.started = true;
        self.point()
    }

    /// The next point at the model's sample interval: the start point first.
    pub fn next_point(&mut self) -> GlucosePoint {
        if self.started {
            self.advance(self.interval.minutes())
        } else {
            self.started = true;
            self.point()
        }
    }

    /// The next `count` sensor readings as samples.
    pub fn sensor_samples(&mut self, count: usize) -> Vec<Sample> {
        (0..count)
            .map(|_| self.next_point().sensor_sample())
            .collect()
    }

    /// Minute index (since start) of the UTC midnight starting the day that
    /// contains `minute`.
    fn minute_of_midnight(&self, minute: i64) -> i64 {
        let t = self.start + TimeDelta::minutes(minute);
        let since_midnight = i64::from(t.hour()) * 60 + i64::from(t.minute());
        minute - since_midnight
    }

    /// Wall-clock hour (fractional) at `minute`.
    fn hour_of_day(&self, minute: i64) -> f64 {
        let t = self.start + TimeDelta::minutes(minute);
        f64::from(t.hour()) + f64::from(t.minute()) / 60.0
    }

    /// Draws the day's meals, boluses, snack, exercise and night-time
    /// compression; `midnight` is the day's first minute.
    fn plan_day(&mut self, midnight: i64) {
        let p = self.profile.clone();
        let day = midnight as f64;
        let rng = &mut self.rng;
        let mut meals = vec![(7.5, 0.5, 45.0), (12.75, 0.75, 60.0), (19.0, 0.75, 70.0)];
        if chance(rng, p.snack_p) {
            meals.push((15.5, 1.0, 25.0));
        }
        for (hour, sd_hours, grams) in meals {
            let at = day + 60.0 * gauss(rng, hour, sd_hours);
            let grams = (p.meal_scale * gauss(rng, grams, grams * 0.25)).max(8.0);
            let tau = uniform(rng, 25.0, 50.0);
            self.carbs.push(Carbs { at, grams, tau });
            if p.boluses && !chance(rng, p.missed_bolus_p) {
                let estimate = grams * gauss(rng, 1.0, p.carb_estimate_sd).max(0.3);
                let delay = gauss(rng, p.bolus_delay_mean_min, p.bolus_delay_sd_min);
                self.boluses.push(Bolus {
                    at: at + delay,
                    units: estimate / p.carb_ratio,
                });
            }
        }
        if chance(rng, p.exercise_p) {
            let from = day + 60.0 * gauss(rng, 17.5, 1.0);
            let to = from + uniform(rng, 30.0, 60.0);
            let size = uniform(rng, 0.5, 1.2);
            self.exercise.push(Window { from, to, size });
        }
        if chance(rng, p.compression_p) {
            let from = day + uniform(rng, 30.0, 300.0);
            let to = from + uniform(rng, 10.0, 40.0);
            let size = uniform(rng, 25.0, 55.0);
            self.compressions.push(Window { from, to, size });
        }
    }

    /// One simulated minute.
    fn step(&mut self) {
        let now = self.minute as f64;
        let p = &self.profile;
        let carbs: f64 = self
            .carbs
            .iter()
            .map(|c| c.grams * p.carb_rise_mgdl_per_g * gamma2(now - c.at, c.tau))
            .sum();
        let insulin: f64 = self
            .boluses
            .iter()
            .map(|b| b.units * p.insulin_sensitivity * gamma2(now - b.at, INSULIN_PEAK_MIN))
            .sum();
        let exercise: f64 = self
            .exercise
            .iter()
            .filter(|w| (w.from..w.to).contains(&now))
            .map(|w| w.size)
            .sum();
        // Growth hormone and cortisol in the early morning: a bell around 06:00.
        let hour = self.hour_of_day(self.minute);
        let dawn = p.dawn_mgdl_per_min * (-((hour - 6.0) / 1.3).powi(2)).exp();
        let effectiveness = p.glucose_effectiveness * (p.equilibrium_mgdl - self.blood);
        // Glucagon and adrenaline answer deep lows even in type 1 (weakly).
        let counter = if self.blood < 60.0 {
            0.04 * (60.0 - self.blood)
        } else {
            0.0
        };
        let drift = self.drift.step(&mut self.rng);
        let change =
            carbs - insulin - exercise + dawn + effectiveness + counter + p.basal_mismatch + drift;
        self.blood = (self.blood + change).clamp(20.0, 600.0);
        self.interstitial += (self.blood - self.interstitial) / p.lag_min;

        self.minute += 1;
        let now = self.minute as f64;
        self.sensor = self.read_sensor(now);
        if self.minute % 5 == 0 {
            self.patient_acts(now);
        }
        let midnight = self.minute_of_midnight(self.minute);
        if midnight > self.planned_until {
            self.planned_until = midnight;
            self.plan_day(midnight);
            self.forget_before(now - EVENT_HORIZON_MIN);
        }
    }

    /// Interstitial glucose as the sensor reports it at `now`.
    fn read_sensor(&mut self, now: f64) -> f64 {
        let error = self.sensor_error.step(&mut self.rng);
        // Lying on the sensor squeezes interstitial fluid away: the reading
        // slides down within minutes, stays low, and recovers once the
        // pressure is gone.
        let mut artefact = 0.0;
        self.compression = false;
        for w in &self.compressions {
            let depth = if (w.from..w.to).contains(&now) {
                w.size * ((now - w.from) / 6.0).min(1.0)
            } else if now >= w.to && now < w.to + 30.0 {
                w.size * ((w.to - w.from) / 6.0).min(1.0) * (-(now - w.to) / 5.0).exp()
            } else {
                0.0
            };
            if depth > 1.0 {
                self.compression = true;
            }
            artefact += depth;
        }
        (self.interstitial + error - artefact)
            .round()
            .clamp(SENSOR_FLOOR_MGDL, SENSOR_CEILING_MGDL)
    }

    /// What the patient does on looking at the CGM.
    fn patient_acts(&mut self, now: f64) {
        let p = &self.profile;
        if self.sensor < p.hypo_treat_threshold_mgdl
            && now - self.last_treatment > 30.0 + p.hypo_reaction_min
        {
            let grams = uniform(&mut self.rng, 15.0, 25.0);
            self.carbs.push(Carbs {
                at: now + p.hypo_reaction_min,
                grams,
                tau: 12.0,
            });
            self.last_treatment = now;
        }
        let last_bolus = self
            .boluses
            .iter()
            .map(|b| b.at)
            .filter(|&at| at <= now)
            .fold(self.last_insulin, f64::max);
        if p.boluses && self.sensor > p.correction_threshold_mgdl && now - last_bolus > 180.0 {
            let units = (self.sensor - 120.0) / p.insulin_sensitivity * p.correction_factor;
            self.boluses.push(Bolus { at: now, units });
            self.last_insulin = now;
        }
    }

    fn forget_before(&mut self, horizon: f64) {
        self.carbs.retain(|c| c.at >= horizon);
        self.boluses.retain(|b| b.at >= horizon);
        self.exercise.retain(|w| w.to >= horizon);
        self.compressions.retain(|w| w.to >= horizon);
    }
}

impl Iterator for GlucoseModel {
    type Item = GlucosePoint;

    /// Never ends: a simulated patient lives as long as the caller wants.
    fn next(&mut self) -> Option<GlucosePoint> {
        Some(self.next_point())
    }
}
