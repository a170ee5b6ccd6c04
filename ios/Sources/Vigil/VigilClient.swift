import Foundation

/// The SDK as Swift apps use it: `async` calls that never block the
/// caller's thread, and `AsyncStream`s of what the SDK reports.
///
/// It wraps the generated `VigilSdk` (in `Generated/`, written by
/// `build-xcframework.sh`). Callbacks arrive on the SDK's own
/// `vigil-callbacks` thread; the streams hand them to any consumer task.
public final class VigilClient: @unchecked Sendable {
    /// Every decoded reading, in the order the core produced them.
    public let readings: AsyncStream<ReadingEvent>
    /// Alerts as they are raised, cleared or re-raised: drive local alarms from this.
    public let alerts: AsyncStream<AlertEvent>
    /// Connection, pairing and session events per device.
    public let deviceEvents: AsyncStream<DeviceEvent>
    /// Sync progress and failures.
    public let syncEvents: AsyncStream<SyncEvent>

    let sdk: VigilSdk
    private let listener: StreamListener

    /// Opens the buffer and starts the SDK. Real sensors need
    /// `transport: .hostFed` and a `CentralBridge`.
    public init(config: VigilConfig, tokenProvider: TokenProvider? = nil) throws {
        let listener = StreamListener()
        self.listener = listener
        readings = listener.readings.stream
        alerts = listener.alerts.stream
        deviceEvents = listener.devices.stream
        syncEvents = listener.syncs.stream
        sdk = try VigilSdk(config: config, listener: listener, tokenProvider: tokenProvider)
    }

    deinit {
        close()
    }

    /// Pairs a device (a peripheral's identifier for real sensors).
    public func pair(_ device: String, kind: DeviceKind) async throws {
        try await offCaller { try self.sdk.pair(device: device, kind: kind) }
    }

    /// Forgets a device; its buffered readings still sync.
    public func forget(_ device: String) async throws {
        try await offCaller { try self.sdk.forget(device: device) }
    }

    /// Starts collecting from every paired device.
    public func start() async throws {
        try await offCaller { try self.sdk.start() }
    }

    /// Stops collecting; buffered readings stay for the next sync.
    public func stop() async throws {
        try await offCaller { try self.sdk.stop() }
    }

    /// Sends what is buffered now; returns how many readings the server acknowledged.
    @discardableResult
    public func syncNow() async throws -> UInt64 {
        try await offCaller { try self.sdk.syncNow() }
    }

    /// Buffer depth and pressure, last sync, last device contact, ledger.
    public func status() async throws -> Status {
        try await offCaller { try self.sdk.status() }
    }

    /// Up to `limit` stored readings of `streams` that `target` has not
    /// confirmed, oldest first (held-back readings included): the same batch
    /// again until `confirmExport`. The cursor lives in the SDK's buffer, so
    /// an export resumes after a kill and readings stored earlier are exported.
    public func exportBatch(target: String, streams: [String], limit: UInt32) async throws -> ExportBatch {
        try await offCaller { try self.sdk.exportBatch(target: target, streams: streams, limit: limit) }
    }

    /// The series that stands for the patient: of every stored reading of
    /// `quantity` (`glucose`, `heart_rate`, `spo2`) measured in
    /// `fromMs..<toMs` (at most 24 h), one reading per coincident moment, the
    /// one the precedence policy picks, unchanged, in time order. The
    /// readings stream and `exportBatch` stay raw.
    public func resolvedReadings(quantity: String, fromMs: Int64, toMs: Int64) async throws -> [ReadingEvent] {
        try await offCaller { try self.sdk.resolvedReadings(quantity: quantity, fromMs: fromMs, toMs: toMs) }
    }

    /// `target` stored the batch that came with `cursor`; never moves the cursor back.
    public func confirmExport(target: String, cursor: UInt64) async throws {
        try await offCaller { try self.sdk.confirmExport(target: target, cursor: cursor) }
    }

    /// Tells the SDK which network the phone has (batches may wait for Wi-Fi).
    public func setNetwork(_ network: Network) throws {
        try sdk.setNetwork(network: network)
    }

    /// Shuts the SDK down and finishes every stream.
    public func close() {
        _ = try? sdk.shutdown()
        listener.finish()
    }

    /// Runs a short blocking SDK call away from the caller (often the main actor).
    private func offCaller<T>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}

/// A stream and the continuation that feeds it.
struct Feed<Element: Sendable>: Sendable {
    let stream: AsyncStream<Element>
    let continuation: AsyncStream<Element>.Continuation

    init() {
        // Alerts and readings must not be dropped while a consumer is slow.
        (stream, continuation) = AsyncStream.makeStream(of: Element.self, bufferingPolicy: .unbounded)
    }
}

/// The listener the SDK calls; it forwards to the streams and, for the
/// host-fed transport, to the CoreBluetooth bridge.
final class StreamListener: VigilListener, @unchecked Sendable {
    let readings = Feed<ReadingEvent>()
    let alerts = Feed<AlertEvent>()
    let devices = Feed<DeviceEvent>()
    let syncs = Feed<SyncEvent>()
    private let lock = NSLock()
    private var hostHandler: (@Sendable (HostRequest) -> Void)?

    /// Where host requests go (set by `CentralBridge`).
    func onHostRequests(_ handler: @escaping @Sendable (HostRequest) -> Void) {
        lock.lock()
        hostHandler = handler
        lock.unlock()
    }

    func onReading(reading: ReadingEvent) {
        readings.continuation.yield(reading)
    }

    func onAlert(alert: AlertEvent) {
        alerts.continuation.yield(alert)
    }

    func onDeviceEvent(event: DeviceEvent) {
        devices.continuation.yield(event)
    }

    func onSyncEvent(event: SyncEvent) {
        syncs.continuation.yield(event)
    }

    func onBufferEvent(event: BufferEvent) {}

    func onHostRequest(request: HostRequest) {
        lock.lock()
        let handler = hostHandler
        lock.unlock()
        handler?(request)
    }

    func finish() {
        readings.continuation.finish()
        alerts.continuation.finish()
        devices.continuation.finish()
        syncs.continuation.finish()
    }
}

extension VigilClient {
    /// Routes the SDK's host requests to a CoreBluetooth bridge.
    func attach(_ bridge: CentralBridge) {
        listener.onHostRequests { [weak bridge] request in bridge?.handle(request) }
    }
}
