//! What every fuzz target does with its input: decode it every way the core
//! can (with and without E2E-CRC, as either service's RACP) and insist that
//! a rejection is a well-formed one-line error. A panic is the finding.

use vigil_core::codec::racp::RacpService;
use vigil_core::codec::{DecodeOptions, decode};

/// Decodes `data` as characteristic `uuid` in every mode.
pub fn decode_all_ways(uuid: u16, data: &[u8]) {
    for e2e_crc in [false, true] {
        for racp_service in [RacpService::Cgm, RacpService::Glucose] {
            let opts = DecodeOptions { e2e_crc, racp_service };
            if let Err(e) = decode(uuid, data, &opts) {
                let text = e.to_string();
                assert!(!text.is_empty() && !text.contains('\n'), "bad error text: {text:?}");
            }
        }
    }
}
