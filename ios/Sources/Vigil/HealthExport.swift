// Export of the patient's readings to HealthKit, opted in per data type:
// the iOS side of the Android layer's HealthExport (same design).
//
// Where it sits: after decoding, beside the buffer. The exporter takes every
// reading of an opted-in type from `VigilClient.readings` into its journal
// (an ordered list the app persists), and `exportPending` saves the journal
// in order, a batch at a time, removing a batch only once HealthKit took it,
// so an interrupted export resumes at the first reading not yet saved.
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

    /// Journals a decoded reading if its type is opted in.
    public init?(_ reading: Reading, optedIn: Set<HealthExportType>) {
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

/// Saves journalled records to HealthKit in order, in batches.
public final class HealthExporter {
    private let store: HKHealthStore
    private let batch: Int

    public init(store: HKHealthStore, batch: Int = 1000) {
        self.store = store
        self.batch = max(1, batch)
    }

    /// Saves `journal` from its start; returns how many records HealthKit
    /// took. The caller drops that many from the front of its journal.
    public func exportPending(_ journal: [HealthExportRecord]) async throws -> Int {
        var saved = 0
        while saved < journal.count {
            let chunk = journal[saved..<min(saved + batch, journal.count)]
            try await store.save(chunk.map { $0.sample() })
            saved += chunk.count
        }
        return saved
    }
}
#endif
