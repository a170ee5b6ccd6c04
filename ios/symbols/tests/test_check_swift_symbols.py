"""The symbol check's own tests: it passes a wrapper that uses only what
exists, and fails, naming the symbol, for each way a wrapper can drift
from the generated bindings. With VIGIL_GENERATED_SWIFT set (as
check-swift-symbols.sh does), it also checks the real wrapper against the
real generated Swift and proves that breaking it is caught."""

from __future__ import annotations

import os
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from check_swift_symbols import check  # noqa: E402

FIXTURE = (HERE / "fixture_generated.swift").read_text()
PLATFORM = {"Foundation", "String", "Data", "UInt8", "Int64", "Bool", "NSObject", "Error"}

GOOD = """
import Foundation

/// A wrapper using every kind of reference the checker follows.
final class Client: Listener {
    let sdk: SensorSdk
    init(config: Config) throws {
        sdk = try SensorSdk(config: config, listener: self, tokenProvider: nil)
    }
    func onReading(reading: Status) { print("\\(reading.running)") }
    func onHostRequest(request: HostReply) {
        switch request {
        case .done: break
        case let .value(value): _ = value
        case .failed(let message): _ = message
        }
    }
    func go() throws -> Bool {
        try sdk.pair(device: "x", kind: .heartRate)
        let status = try sdk.status()
        try self.sdk.setPower(percent: 5, charging: false)
        _ = describeKind(kind: DeviceKind.cgm)
        _ = Status(devices: [], running: true, lastSyncMs: nil)
        if case SdkError.InvalidInput = SdkError.Storage("") {}
        return status.running && status.lastSyncMs == nil
    }
}
"""


def run(wrapper: str, generated: str = FIXTURE) -> dict[str, str]:
    return check(generated, {"Wrapper.swift": wrapper}, PLATFORM).missing


class FixtureTests(unittest.TestCase):
    def test_a_wrapper_using_only_generated_symbols_passes(self):
        self.assertEqual(run(GOOD), {})

    def drift(self, old: str, new: str, expected: str):
        self.assertIn(old, GOOD, "the test's own edit must apply")
        missing = run(GOOD.replace(old, new, 1))
        self.assertTrue(any(expected in m for m in missing), f"wanted {expected!r}, got {sorted(missing)}")

    def test_a_missing_method_fails(self):
        self.drift("sdk.status()", "sdk.currentStatus()", "SensorSdk.currentStatus")

    def test_a_renamed_argument_label_fails(self):
        self.drift("setPower(percent: 5", "setPower(level: 5", "SensorSdk.setPower(level:charging:)")

    def test_a_missing_record_field_on_an_inferred_local_fails(self):
        self.drift("status.lastSyncMs", "status.lastSync", "Status.lastSync")

    def test_a_missing_field_in_an_interpolation_fails(self):
        self.drift("reading.running)", "reading.isRunning)", "Status.isRunning")

    def test_a_missing_type_fails(self):
        self.drift("_ = Status(devices", "_ = Report(devices", "type Report")

    def test_a_missing_enum_case_in_a_switch_fails(self):
        self.drift("case .done: break", "case .finished: break", "HostReply.finished")

    def test_a_missing_enum_case_passed_as_an_argument_fails(self):
        self.drift("kind: .heartRate", "kind: .pulseOximeter", "DeviceKind.pulseOximeter")

    def test_a_missing_qualified_case_fails(self):
        self.drift("DeviceKind.cgm", "DeviceKind.glucoseMeter", "DeviceKind.glucoseMeter")

    def test_a_missing_error_case_fails(self):
        self.drift("SdkError.InvalidInput", "SdkError.Network", "SdkError.Network")

    def test_wrong_initializer_labels_fail(self):
        self.drift("tokenProvider: nil)", "tokens: nil)", "SensorSdk.init(config:listener:tokens:)")

    def test_a_missing_free_function_label_fails(self):
        self.drift("describeKind(kind:", "describeKind(of:", "describeKind(of:)")

    def test_a_conformance_missing_a_protocol_method_fails(self):
        self.drift("func onReading(reading: Status)", "func onReading(value: Status)",
                   "Client does not implement Listener.onReading(reading:)")

    def test_a_method_removed_from_the_generated_side_fails(self):
        generated = FIXTURE.replace("open func setPower(", "open func setBattery(")
        missing = run(GOOD, generated)
        self.assertIn("SensorSdk.setPower", missing)

    def test_an_unknown_platform_type_fails_until_listed(self):
        wrapper = GOOD + "\nlet queue: DispatchQueue? = nil\n"
        self.assertIn("type DispatchQueue", run(wrapper))
        self.assertEqual(check(FIXTURE, {"W.swift": wrapper}, PLATFORM | {"DispatchQueue"}).missing, {})

    def test_comments_and_strings_are_not_code(self):
        wrapper = GOOD + '\n// sdk.nothing(at: all) Unknown\nlet s = "Unknown sdk.nothing()"\n'
        self.assertEqual(run(wrapper), {})


@unittest.skipUnless(os.environ.get("VIGIL_GENERATED_SWIFT"), "set by check-swift-symbols.sh")
class RealBindingsTests(unittest.TestCase):
    """The shipped wrapper against the Swift generated from the built library."""

    def setUp(self):
        self.generated = Path(os.environ["VIGIL_GENERATED_SWIFT"]).read_text()
        sources = HERE.parent.parent / "Sources" / "Vigil"
        self.files = {p.name: p.read_text() for p in sorted(sources.glob("*.swift"))}
        names = (HERE.parent / "platform-names.txt").read_text().splitlines()
        self.platform = {n.split("#")[0].strip() for n in names} - {""}

    def test_the_wrapper_uses_only_generated_symbols(self):
        self.assertEqual(check(self.generated, self.files, self.platform).missing, {})

    def test_renaming_a_used_sdk_method_is_caught(self):
        files = dict(self.files)
        files["VigilClient.swift"] = files["VigilClient.swift"].replace("self.sdk.syncNow()", "self.sdk.syncAll()")
        self.assertNotEqual(files, self.files)
        self.assertIn("VigilSdk.syncAll", check(self.generated, files, self.platform).missing)

    def test_a_listener_method_the_generated_protocol_lacks_is_caught(self):
        generated = self.generated.replace("func onAlert(alert: AlertEvent)", "func onAlarm(alert: AlertEvent)")
        self.assertNotEqual(generated, self.generated)
        missing = check(generated, self.files, self.platform).missing
        self.assertTrue(any("VigilListener.onAlarm(alert:)" in m for m in missing), sorted(missing))


if __name__ == "__main__":
    unittest.main()
