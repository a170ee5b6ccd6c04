import Foundation
import XCTest
@testable import Vigil

/// The wrapper against the real library, with simulated sensors and a
/// simulated clock: what an app developer writes, as tests (run on a Mac:
/// `./build-xcframework.sh && swift test`).
final class VigilClientTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func config(patient: String = "patient-1") -> VigilConfig {
        VigilConfig(
            storagePath: directory.appendingPathComponent("buffer.sqlite").path,
            patientId: patient,
            transport: .simulated,
            clock: .simulated(startMs: 1_767_225_600_000, runFor: 3 * 3_600),
            simulationSeed: 7
        )
    }

    func testReadingsFromASimulatedCgmArriveOnTheStream() async throws {
        let client = try VigilClient(config: config())
        defer { client.close() }
        try await client.pair("cgm-1", kind: .cgm)
        try await client.start()

        var glucose: [ReadingEvent] = []
        for await reading: ReadingEvent in client.readings where reading.device == "cgm-1" {
            glucose.append(reading)
            if glucose.count == 5 { break }
        }
        XCTAssertEqual(glucose.count, 5)
        XCTAssertTrue(glucose.allSatisfy { $0.value > 0 })
        XCTAssertEqual(glucose.map(\.sequence), glucose.map(\.sequence).sorted())
        let status: Status = try await client.status()
        XCTAssertEqual(status.devices, ["cgm-1"])
        XCTAssertEqual(status.bufferPressure, .normal)
    }

    func testAnEmptyPatientIsRejectedAsInvalidInput() {
        XCTAssertThrowsError(try VigilClient(config: config(patient: " "))) { error in
            guard case SdkError.InvalidInput = error else {
                return XCTFail("expected InvalidInput, got \(error)")
            }
        }
    }

    func testSyncWithoutAServerFailsClearly() async throws {
        let client = try VigilClient(config: config())
        defer { client.close() }
        do {
            try await client.syncNow()
            XCTFail("sync without a server URL must fail")
        } catch let error as SdkError {
            XCTAssertFalse("\(error)".isEmpty)
        }
    }

    func testCloseFinishesTheStreams() async throws {
        let client = try VigilClient(config: config())
        client.close()
        var count = 0
        for await _ in client.alerts { count += 1 }
        XCTAssertEqual(count, 0)
    }
}
