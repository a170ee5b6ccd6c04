// Export of the patient's readings to HealthKit, opted in per data type:
// the iOS side of the Android layer's HealthExport (same design).
//
// Where it sits: beside sync, reading the SDK's own buffer. The export
// cursor lives in that buffer (`VigilClient.exportBatch` and
// `confirmExport`), not in a journal the app keeps: `exportPending` saves
// the readings after the cursor in order, a batch at a time, and moves the
// cursor only once HealthKit took a batch, so an interrupted export resumes
// at the first reading not yet saved, and readings decoded before the user
// opted in are exported too. Readings the buffer evicted first are gone.
//
// Each sample carries the reading's identity as HKMetadataKeySyncIdentifier
// and a version as HKMetadataKeySyncVersion: saving it again (a retry after
// a lost answer) replaces the sample, never duplicates it.
#if canImport(HealthKit)
import Foundation
import HealthKit

/// The data types a user can opt into exporting.
public enum HealthExportType: String, CaseIterable, Sendable {
    /// CGM glucose (mg/dL), as an HKQuantitySample of bloodGlucose.
    case glucose = "glucose"
    /// Heart rate (/min), as an HKQuantitySample of heartRate.
    case heartRate = "heart_rate"
    /// SpO2 (%), as an HKQuantitySample of oxygenSaturation.
    case spo2 = "spo2"
}

/// One reading as HealthKit receives it.
public struct HealthExportRecord: Sendable, Equatable {
    /// The reading's identity (device, stream, sequence, sensor time).
    public let syncIdentifier: String
    public let type: HealthExportType
    public let value: Double
    public let time: Date

    /// The record for a reading, if its type is opted in.
    public init?(_ reading: ReadingEvent, optedIn: Set<HealthExportType>) {
        guard let type = HealthExportType(rawValue: reading.stream), optedIn.contains(type) else { return nil }
        syncIdentifier = "\(reading.device)/\(reading.stream)/\(reading.sequence)/\(reading.sensorTimeMs)"
        self.type = type
        value = reading.value
        time = Date(timeIntervalSince1970: TimeInterval(reading.sensorTimeMs) / 1000)
    }

    /// Records are immutable once read: every export is version 1.
    public static let syncVersion = 1

    /// The HealthKit sample, keyed for replacement by its sync identifier.
    public func sample() -> HKQuantitySample {
        let (identifier, unit, amount): (HKQuantityTypeIdentifier, HKUnit, Double) = switch type {
        case .glucose: (.bloodGlucose, HKUnit(from: "mg/dL"), value)
        case .heartRate: (.heartRate, HKUnit.count().unitDivided(by: .minute()), value)
        case .spo2: (.oxygenSaturation, HKUnit.percent(), value / 100)
        }
        return HKQuantitySample(
            type: HKQuantityType(identifier),
            quantity: HKQuantity(unit: unit, doubleValue: amount),
            start: time, end: time,
            metadata: [
                HKMetadataKeySyncIdentifier: syncIdentifier,
                HKMetadataKeySyncVersion: HealthExportRecord.syncVersion,
            ])
    }
}

/// Saves the buffer's readings of the opted-in types to HealthKit in order,
/// in batches, under the export cursor named `target`.
public final class HealthExporter {
    private let client: VigilClient
    private let store: HKHealthStore
    private let types: Set<HealthExportType>
    private let target: String
    private let batch: UInt32

    public init(
        client: VigilClient, store: HKHealthStore, types: Set<HealthExportType>,
        target: String = "healthkit", batch: Int = 1000
    ) {
        self.client = client
        self.store = store
        self.types = types
        self.target = target
        self.batch = UInt32(min(max(1, batch), 10_000))
    }

    /// Saves every reading after the cursor; returns how many HealthKit took.
    /// A failed save throws with the cursor before that batch, so the next
    /// call sends it again (replaced, not duplicated, by its sync identifier).
    public func exportPending() async throws -> Int {
        if types.isEmpty { return 0 }
        var saved = 0
        while true {
            let next = try await client.exportBatch(
                target: target, streams: types.map(\.rawValue), limit: batch)
            if next.readings.isEmpty { return saved }
            let records = next.readings.compactMap { HealthExportRecord($0, optedIn: types) }
            try await store.save(records.map { $0.sample() })
            try await client.confirmExport(target: target, cursor: next.cursor)
            saved += records.count
        }
    }
}
#endif
