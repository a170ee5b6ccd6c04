//! `vigil reduction-check` on the product path for one simulated day:
//! every guarantee it checks holds, and it reports the bytes on the wire
//! (headers included) beside a Nightscout uploader's for the same readings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn one_day_meets_every_guarantee_and_counts_the_wire_against_nightscout() {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["reduction-check", "--days", "1", "--intervals", "5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let average = stdout
        .lines()
        .find(|l| l.contains("average:"))
        .unwrap_or_else(|| panic!("no average line: {stdout}"));
    // "... N wire bytes per patient-day against M for a Nightscout uploader (R %)"
    let number_before = |needle: &str| -> f64 {
        let at = average.find(needle).unwrap_or_else(|| panic!("{average}"));
        average[..at]
            .split_whitespace()
            .last()
            .unwrap()
            .parse()
            .unwrap()
    };
    let vigil = number_before("wire bytes per patient-day");
    let nightscout = number_before("for a Nightscout uploader");
    // One day of 5-minute readings: an uploader posts 288 requests, each
    // with its headers; the SDK's batches must cost less, and neither side
    // can be free.
    assert!(vigil > 10_000.0 && nightscout > 288.0 * 300.0, "{average}");
    assert!(vigil < nightscout, "{average}");
}
