//! Alert settings: clinician-expected defaults, every number configurable,
//! validated before an engine can use them.
//!
//! Defaults: urgent low < 54 mg/dL and low < 70 mg/dL are the consensus
//! level-2 and level-1 hypoglycaemia thresholds; high > 250 mg/dL is the
//! consensus level-2 hyperglycaemia threshold; 2 mg/dL/min over 15 min is the
//! fast-change rate of common CGM apps; 20 min for the projection horizon and
//! signal loss, 30 min re-alerts for lows and 120 min for highs are the
//! issue's defaults. The rate hysteresis (0.5 mg/dL/min), battery threshold
//! (20 %) and session warning (24 h) are our product choices, not clinical
//! standards; they are settings for that reason.

use serde::{Deserialize, Serialize};

use crate::clock::Seconds;
use crate::error::{Error, Result};

/// Every threshold, margin and interval of the alert engine.
///
/// Also the record Kotlin and Swift configure alerts with (one definition
/// of the settings): every field has a default argument equal to
/// [`AlertConfig::default`], so an app names only what it changes.
/// Intervals are whole [`Seconds`] because uniffi can give those a default
/// argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct AlertConfig {
    /// Urgent low starts below this glucose, mg/dL (default 54).
    #[cfg_attr(feature = "uniffi", uniffi(default = 54.0))]
    pub urgent_low_mg_dl: f64,
    /// Low starts below this glucose, mg/dL (default 70).
    #[cfg_attr(feature = "uniffi", uniffi(default = 70.0))]
    pub low_mg_dl: f64,
    /// High starts above this glucose, mg/dL (default 250).
    #[cfg_attr(feature = "uniffi", uniffi(default = 250.0))]
    pub high_mg_dl: f64,
    /// A glucose alert (and predicted urgent low) ends only once the value is
    /// back past its threshold by this margin, mg/dL (default 5).
    #[cfg_attr(feature = "uniffi", uniffi(default = 5.0))]
    pub hysteresis_mg_dl: f64,
    /// Fast fall/rise start when the rate is beyond this, mg/dL/min
    /// (default 2).
    #[cfg_attr(feature = "uniffi", uniffi(default = 2.0))]
    pub fast_rate_mg_dl_per_min: f64,
    /// A rate alert ends once the rate is back inside the threshold by this
    /// margin, mg/dL/min (default 0.5).
    #[cfg_attr(feature = "uniffi", uniffi(default = 0.5))]
    pub rate_hysteresis_mg_dl_per_min: f64,
    /// The rate is the least-squares slope of the readings in this window
    /// ending at the newest reading (default 15 min).
    #[cfg_attr(feature = "uniffi", uniffi(default = 900))]
    pub rate_window: Seconds,
    /// Fewest readings in the window for a rate to exist (default 3): fewer
    /// make a slope that one noisy reading can swing.
    #[cfg_attr(feature = "uniffi", uniffi(default = 3))]
    pub rate_min_readings: u32,
    /// Predicted urgent low looks this far ahead (default 20 min).
    #[cfg_attr(feature = "uniffi", uniffi(default = 1200))]
    pub prediction_horizon: Seconds,
    /// Signal loss starts when no glucose reading came for longer than this
    /// (default 20 min).
    #[cfg_attr(feature = "uniffi", uniffi(default = 1200))]
    pub signal_loss_after: Seconds,
    /// Re-alert interval of urgent low, low, fast fall and predicted urgent
    /// low (default 30 min).
    #[cfg_attr(feature = "uniffi", uniffi(default = 1800))]
    pub realert_low: Seconds,
    /// Re-alert interval of high and fast rise (default 120 min).
    #[cfg_attr(feature = "uniffi", uniffi(default = 7200))]
    pub realert_high: Seconds,
    /// Re-alert interval of signal loss (default 30 min: a lost signal may
    /// hide a low).
    #[cfg_attr(feature = "uniffi", uniffi(default = 1800))]
    pub realert_signal_loss: Seconds,
    /// Battery low starts below this level, percent (default 20).
    #[cfg_attr(feature = "uniffi", uniffi(default = 20.0))]
    pub battery_low_pct: f64,
    /// Battery low ends once the level is back above the threshold by this,
    /// percent points (default 5).
    #[cfg_attr(feature = "uniffi", uniffi(default = 5.0))]
    pub battery_hysteresis_pct: f64,
    /// Sensor session ending starts this long before the session expires
    /// (default 24 h).
    #[cfg_attr(feature = "uniffi", uniffi(default = 86400))]
    pub sensor_ending_warning: Seconds,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            urgent_low_mg_dl: 54.0,
            low_mg_dl: 70.0,
            high_mg_dl: 250.0,
            hysteresis_mg_dl: 5.0,
            fast_rate_mg_dl_per_min: 2.0,
            rate_hysteresis_mg_dl_per_min: 0.5,
            rate_window: Seconds::minutes(15),
            rate_min_readings: 3,
            prediction_horizon: Seconds::minutes(20),
            signal_loss_after: Seconds::minutes(20),
            realert_low: Seconds::minutes(30),
            realert_high: Seconds::minutes(120),
            realert_signal_loss: Seconds::minutes(30),
            battery_low_pct: 20.0,
            battery_hysteresis_pct: 5.0,
            sensor_ending_warning: Seconds::hours(24),
        }
    }
}

fn bad(setting: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidSetting {
        setting,
        reason: reason.into(),
    }
}

impl AlertConfig {
    /// The glucose at which a low episode has not yet ended (the low
    /// threshold plus the hysteresis): what
    /// [`PrecedenceConfig::glucose_alerting`](crate::precedence::PrecedenceConfig::glucose_alerting)
    /// needs so that no source's low is hidden by another's higher value.
    pub fn low_episode_end_mg_dl(&self) -> f64 {
        self.low_mg_dl + self.hysteresis_mg_dl
    }

    /// Checks that every setting makes sense on its own and with the others.
    ///
    /// Refused ([`Error::InvalidSetting`] naming the setting): a non-finite
    /// number; thresholds not ordered `0 < urgent low < low < high`; a
    /// negative margin, or one so wide that the low and high end bands would
    /// overlap; a rate margin not below the rate threshold; a non-positive
    /// window, horizon or interval; fewer than 2 readings for a rate; a
    /// battery threshold outside `0..100`. (Intervals are unsigned, so none
    /// is negative.)
    pub fn validate(&self) -> Result<()> {
        let numbers = [
            ("urgent_low_mg_dl", self.urgent_low_mg_dl),
            ("low_mg_dl", self.low_mg_dl),
            ("high_mg_dl", self.high_mg_dl),
            ("hysteresis_mg_dl", self.hysteresis_mg_dl),
            ("fast_rate_mg_dl_per_min", self.fast_rate_mg_dl_per_min),
            (
                "rate_hysteresis_mg_dl_per_min",
                self.rate_hysteresis_mg_dl_per_min,
            ),
            ("battery_low_pct", self.battery_low_pct),
            ("battery_hysteresis_pct", self.battery_hysteresis_pct),
        ];
        for (name, v) in numbers {
            if !v.is_finite() {
                return Err(bad(name, "must be a finite number"));
            }
        }
        if self.urgent_low_mg_dl <= 0.0 {
            return Err(bad("urgent_low_mg_dl", "must be above 0 mg/dL"));
        }
        if self.urgent_low_mg_dl >= self.low_mg_dl {
            return Err(bad(
                "urgent_low_mg_dl",
                format!(
                    "urgent low ({}) must be below low ({})",
                    self.urgent_low_mg_dl, self.low_mg_dl
                ),
            ));
        }
        if self.low_mg_dl >= self.high_mg_dl {
            return Err(bad(
                "low_mg_dl",
                format!(
                    "low ({}) must be below high ({})",
                    self.low_mg_dl, self.high_mg_dl
                ),
            ));
        }
        if self.hysteresis_mg_dl < 0.0
            || 2.0 * self.hysteresis_mg_dl >= self.high_mg_dl - self.low_mg_dl
        {
            return Err(bad(
                "hysteresis_mg_dl",
                "must be at least 0 and less than half the distance from low to high",
            ));
        }
        if self.fast_rate_mg_dl_per_min <= 0.0 {
            return Err(bad("fast_rate_mg_dl_per_min", "must be above 0"));
        }
        if self.rate_hysteresis_mg_dl_per_min < 0.0
            || self.rate_hysteresis_mg_dl_per_min >= self.fast_rate_mg_dl_per_min
        {
            return Err(bad(
                "rate_hysteresis_mg_dl_per_min",
                "must be at least 0 and below the fast rate threshold",
            ));
        }
        let durations = [
            ("rate_window", self.rate_window),
            ("prediction_horizon", self.prediction_horizon),
            ("signal_loss_after", self.signal_loss_after),
            ("realert_low", self.realert_low),
            ("realert_high", self.realert_high),
            ("realert_signal_loss", self.realert_signal_loss),
        ];
        for (name, d) in durations {
            if d == Seconds(0) {
                return Err(bad(name, "must be a positive duration"));
            }
        }
        if self.rate_min_readings < 2 {
            return Err(bad(
                "rate_min_readings",
                "a slope needs at least 2 readings",
            ));
        }
        if self.battery_low_pct <= 0.0 || self.battery_low_pct >= 100.0 {
            return Err(bad("battery_low_pct", "must be between 0 and 100 %"));
        }
        if self.battery_hysteresis_pct < 0.0
            || self.battery_low_pct + self.battery_hysteresis_pct > 100.0
        {
            return Err(bad(
                "battery_hysteresis_pct",
                "must be at least 0 and keep the end level at most 100 %",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(edit: impl FnOnce(&mut AlertConfig)) -> &'static str {
        let mut c = AlertConfig::default();
        edit(&mut c);
        match c.validate() {
            Err(Error::InvalidSetting { setting, .. }) => setting,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_clinical_thresholds_and_valid() {
        let c = AlertConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(
            (c.urgent_low_mg_dl, c.low_mg_dl, c.high_mg_dl),
            (54.0, 70.0, 250.0)
        );
        assert_eq!(c.realert_low, Seconds::minutes(30));
        assert_eq!(c.realert_high, Seconds::minutes(120));
    }

    #[test]
    fn nonsense_settings_are_refused_by_name() {
        assert_eq!(refused(|c| c.low_mg_dl = 300.0), "low_mg_dl");
        assert_eq!(refused(|c| c.urgent_low_mg_dl = 80.0), "urgent_low_mg_dl");
        assert_eq!(refused(|c| c.urgent_low_mg_dl = 0.0), "urgent_low_mg_dl");
        assert_eq!(refused(|c| c.high_mg_dl = f64::NAN), "high_mg_dl");
        assert_eq!(refused(|c| c.hysteresis_mg_dl = -1.0), "hysteresis_mg_dl");
        assert_eq!(refused(|c| c.hysteresis_mg_dl = 90.0), "hysteresis_mg_dl");
        assert_eq!(
            refused(|c| c.fast_rate_mg_dl_per_min = 0.0),
            "fast_rate_mg_dl_per_min"
        );
        assert_eq!(
            refused(|c| c.rate_hysteresis_mg_dl_per_min = 2.0),
            "rate_hysteresis_mg_dl_per_min"
        );
        assert_eq!(refused(|c| c.rate_window = Seconds(0)), "rate_window");
        assert_eq!(refused(|c| c.rate_min_readings = 1), "rate_min_readings");
        assert_eq!(refused(|c| c.realert_high = Seconds(0)), "realert_high");
        assert_eq!(refused(|c| c.battery_low_pct = 100.0), "battery_low_pct");
    }
}
