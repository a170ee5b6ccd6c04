//! Network and battery policy: what may leave the phone now.
//!
//! The host tells the engine the current network and battery; this module
//! decides, as a pure function, so the rules are tested apart from timers
//! and sockets. Alerts go on any network whatever the battery (a phone
//! about to die is exactly when a low must reach the clinic); heartbeats
//! too (small, and the cloud's dead-man's switch depends on them); batches
//! may wait for an unmetered network and wait on a low battery.

use super::SyncConfig;

/// The phone's current network, as the host reports it (the facade's
/// `set_network` and `status` speak this type too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum Network {
    /// No connectivity: nothing is attempted.
    None,
    /// Unmetered (Wi-Fi, Ethernet).
    #[default]
    Wifi,
    /// Cellular data.
    Cellular,
    /// Any other metered link (a hotspot, roaming).
    Metered,
}

impl Network {
    /// Whether data on this network costs the user.
    pub fn is_metered(self) -> bool {
        matches!(self, Network::Cellular | Network::Metered)
    }
}

/// The phone's battery, as the host reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Power {
    /// Charge, 0-100.
    pub percent: u8,
    /// Plugged in.
    pub charging: bool,
}

impl Default for Power {
    /// Full and charging: nothing waits until the host says otherwise.
    fn default() -> Self {
        Power {
            percent: 100,
            charging: true,
        }
    }
}

/// Why batches are waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitReason {
    /// No network.
    NoNetwork,
    /// The app asked batches to wait for an unmetered network.
    MeteredNetwork,
    /// Battery below the threshold and not charging.
    LowBattery,
}

/// What may be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decision {
    /// Alerts and heartbeats may go.
    pub urgent: bool,
    /// Batches may go; otherwise why not.
    pub batches: Result<(), WaitReason>,
}

/// The policy: alerts and heartbeats on any network; batches only when the
/// network and battery allow.
pub fn decide(config: &SyncConfig, network: Network, power: Power) -> Decision {
    let urgent = network != Network::None;
    let batches = if network == Network::None {
        Err(WaitReason::NoNetwork)
    } else if config.wait_for_unmetered && network.is_metered() {
        Err(WaitReason::MeteredNetwork)
    } else if !power.charging && power.percent < config.low_battery_percent {
        Err(WaitReason::LowBattery)
    } else {
        Ok(())
    };
    Decision { urgent, batches }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn power(percent: u8, charging: bool) -> Power {
        Power { percent, charging }
    }

    #[test]
    fn alerts_go_on_any_network_and_any_battery_but_not_without_network() {
        let config = SyncConfig {
            wait_for_unmetered: true,
            ..SyncConfig::default()
        };
        for n in [Network::Wifi, Network::Cellular, Network::Metered] {
            for p in [power(1, false), power(100, true)] {
                assert!(decide(&config, n, p).urgent, "{n:?} {p:?}");
            }
        }
        let d = decide(&config, Network::None, power(100, true));
        assert!(!d.urgent);
        assert_eq!(d.batches, Err(WaitReason::NoNetwork));
    }

    #[test]
    fn batches_wait_for_unmetered_only_when_the_app_says_so() {
        let mut config = SyncConfig::default();
        let full = power(90, false);
        assert_eq!(decide(&config, Network::Cellular, full).batches, Ok(()));
        config.wait_for_unmetered = true;
        assert_eq!(
            decide(&config, Network::Cellular, full).batches,
            Err(WaitReason::MeteredNetwork)
        );
        assert_eq!(
            decide(&config, Network::Metered, full).batches,
            Err(WaitReason::MeteredNetwork)
        );
        assert_eq!(decide(&config, Network::Wifi, full).batches, Ok(()));
    }

    #[test]
    fn batches_wait_below_the_battery_threshold_unless_charging() {
        let config = SyncConfig::default(); // 15 %
        assert_eq!(
            decide(&config, Network::Wifi, power(14, false)).batches,
            Err(WaitReason::LowBattery)
        );
        assert_eq!(
            decide(&config, Network::Wifi, power(15, false)).batches,
            Ok(())
        );
        assert_eq!(
            decide(&config, Network::Wifi, power(3, true)).batches,
            Ok(())
        );
    }
}
