//! Random helpers shared by the models: normal draws and correlated noise.
//!
//! `rand_distr` is not a dependency; the Box-Muller transform is a few lines
//! and keeps every draw under the one seeded generator.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One standard normal draw (Box-Muller; the second variate is dropped to
/// keep the generator's sequence simple to reason about).
pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A normal draw with the given mean and standard deviation.
pub(crate) fn gauss(rng: &mut ChaCha8Rng, mean: f64, sd: f64) -> f64 {
    mean + sd * normal(rng)
}

/// A uniform draw in `[lo, hi)`; `lo` when the range is empty.
pub(crate) fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        lo + (hi - lo) * rng.random::<f64>()
    } else {
        lo
    }
}

/// `true` with probability `p`.
pub(crate) fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// Ornstein-Uhlenbeck (AR(1)) noise sampled at a fixed step: stationary
/// standard deviation `sd`, correlation time `tau` (in steps).
///
/// Real CGM error is smooth, dominated by slow calibration and sensitivity
/// drift rather than independent jitter, and a heart's rate wanders the same
/// way; white noise would make both traces look unlike any device's.
#[derive(Debug, Clone)]
pub(crate) struct Correlated {
    value: f64,
    phi: f64,
    innovation_sd: f64,
}

impl Correlated {
    pub(crate) fn new(rng: &mut ChaCha8Rng, sd: f64, tau_steps: f64) -> Self {
        let phi = if tau_steps > 0.0 {
            (-1.0 / tau_steps).exp()
        } else {
            0.0
        };
        Correlated {
            // Start in the stationary distribution so day one looks like day ten.
            value: sd * normal(rng),
            phi,
            innovation_sd: sd * (1.0 - phi * phi).sqrt(),
        }
    }

    /// Advances one step and returns the new value.
    pub(crate) fn step(&mut self, rng: &mut ChaCha8Rng) -> f64 {
        self.value = self.phi * self.value + self.innovation_sd * normal(rng);
        self.value
    }
}

/// Gamma(k = 2) density in minutes: the shape of carbohydrate appearance and
/// of rapid-acting insulin action (rises, peaks at `tau`, long tail), and it
/// integrates to one so `amount × gamma2` spends exactly `amount`.
pub(crate) fn gamma2(t: f64, tau: f64) -> f64 {
    if t <= 0.0 || tau <= 0.0 {
        0.0
    } else {
        t / (tau * tau) * (-t / tau).exp()
    }
}
