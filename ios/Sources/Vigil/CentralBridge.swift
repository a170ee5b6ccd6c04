#if canImport(CoreBluetooth)
import CoreBluetooth
import Foundation

/// Runs the core's host-fed transport over CoreBluetooth.
///
/// The core decides what to do (connect, discover, subscribe, RACP writes
/// for backfill) and sends `HostRequest`s; the bridge performs each on
/// `CBCentralManager` / `CBPeripheral` and answers with
/// `completeHostRequest`. Notified and indicated values go to
/// `feedHostBytes` untouched: decoding stays in the core. Device ids are
/// peripheral identifiers. With a restore identifier iOS relaunches the
/// app for a sensor's notifications after it was suspended or killed;
/// restored peripherals are handed back to the core as connected.
///
/// Needs `NSBluetoothAlwaysUsageDescription` and the `bluetooth-central`
/// background mode in Info.plist.
public final class CentralBridge: NSObject, @unchecked Sendable {
    private enum Operation {
        case connect, discover, read(CBUUID), write, notify
    }

    private let sdk: VigilSdk
    private let queue = DispatchQueue(label: "health.vigil.central")
    private var central: CBCentralManager!
    private var peripherals: [String: CBPeripheral] = [:]
    private var pending: [String: (token: UInt64, operation: Operation)] = [:]
    private var discovering: [String: Int] = [:]

    /// Creates the central on its own queue and routes the client's host requests here.
    public init(client: VigilClient, restoreIdentifier: String = "health.vigil.central") {
        sdk = client.sdk
        super.init()
        central = CBCentralManager(
            delegate: self,
            queue: queue,
            options: [CBCentralManagerOptionRestoreIdentifierKey: restoreIdentifier]
        )
        client.attach(self)
    }

    /// Performs one request from the core (called on the SDK's callback thread).
    func handle(_ request: HostRequest) {
        queue.async { self.perform(request) }
    }

    private func perform(_ request: HostRequest) {
        let id = request.device ?? ""
        switch request.command {
        case "start_scan", "stop_scan":
            // Devices are paired by identifier; the app's pairing screen scans.
            reply(request.token, .done)
        case "connect":
            guard let uuid = UUID(uuidString: id),
                  let peripheral = central.retrievePeripherals(withIdentifiers: [uuid]).first
            else { return fail(request, "unknown peripheral") }
            peripheral.delegate = self
            peripherals[id] = peripheral
            pending[id] = (request.token, .connect)
            central.connect(peripheral)
        case "disconnect":
            if let peripheral = peripherals.removeValue(forKey: id) {
                central.cancelPeripheralConnection(peripheral)
            }
            reply(request.token, .done)
        case "discover":
            guard let peripheral = peripherals[id] else { return fail(request, "not connected") }
            pending[id] = (request.token, .discover)
            peripheral.discoverServices(nil)
        case "read":
            guard let (peripheral, characteristic) = lookup(request) else { return }
            pending[id] = (request.token, .read(characteristic.uuid))
            peripheral.readValue(for: characteristic)
        case "write":
            guard let (peripheral, characteristic) = lookup(request) else { return }
            // Control points (RACP, CGM Specific Ops) need a write with response.
            if characteristic.properties.contains(.write) {
                pending[id] = (request.token, .write)
                peripheral.writeValue(Data(request.value), for: characteristic, type: .withResponse)
            } else {
                peripheral.writeValue(Data(request.value), for: characteristic, type: .withoutResponse)
                reply(request.token, .done)
            }
        case "subscribe", "unsubscribe":
            guard let (peripheral, characteristic) = lookup(request) else { return }
            pending[id] = (request.token, .notify)
            // CoreBluetooth writes the CCCD (notify or indicate) itself.
            peripheral.setNotifyValue(request.command == "subscribe", for: characteristic)
        default:
            fail(request, "unsupported command")
        }
    }

    private func lookup(_ request: HostRequest) -> (CBPeripheral, CBCharacteristic)? {
        guard let id = request.device, let peripheral = peripherals[id] else {
            fail(request, "not connected")
            return nil
        }
        let wanted = request.characteristic.map { CBUUID(string: $0) }
        let found = peripheral.services?
            .flatMap { $0.characteristics ?? [] }
            .first { $0.uuid == wanted }
        guard let characteristic = found else {
            fail(request, "no such characteristic")
            return nil
        }
        return (peripheral, characteristic)
    }

    private func answer(_ id: String, _ result: HostReply) {
        if let waiting = pending.removeValue(forKey: id) {
            reply(waiting.token, result)
        }
    }

    private func answer(_ id: String, error: Error?, _ result: @autoclosure () -> HostReply) {
        answer(id, error.map { .failed(message: $0.localizedDescription) } ?? result())
    }

    private func reply(_ token: UInt64, _ result: HostReply) {
        _ = try? sdk.completeHostRequest(token: token, reply: result)
    }

    private func fail(_ request: HostRequest, _ why: String) {
        if let id = request.device { pending.removeValue(forKey: id) }
        reply(request.token, .failed(message: why))
    }
}

extension CentralBridge: CBCentralManagerDelegate {
    public func centralManagerDidUpdateState(_ central: CBCentralManager) {}

    public func centralManager(_ central: CBCentralManager, willRestoreState dict: [String: Any]) {
        let restored = dict[CBCentralManagerRestoredStatePeripheralsKey] as? [CBPeripheral] ?? []
        for peripheral in restored {
            let id = peripheral.identifier.uuidString
            peripheral.delegate = self
            peripherals[id] = peripheral
            if peripheral.state == .connected {
                _ = try? sdk.hostConnection(device: id, connected: true)
            }
        }
    }

    public func centralManager(_ central: CBCentralManager, didConnect peripheral: CBPeripheral) {
        let id = peripheral.identifier.uuidString
        _ = try? sdk.hostConnection(device: id, connected: true)
        answer(id, .done)
    }

    public func centralManager(_ central: CBCentralManager, didFailToConnect peripheral: CBPeripheral, error: Error?) {
        answer(peripheral.identifier.uuidString, .failed(message: error?.localizedDescription ?? "connect failed"))
    }

    public func centralManager(_ central: CBCentralManager, didDisconnectPeripheral peripheral: CBPeripheral, error: Error?) {
        let id = peripheral.identifier.uuidString
        _ = try? sdk.hostConnection(device: id, connected: false)
        answer(id, .failed(message: "disconnected"))
    }
}

extension CentralBridge: CBPeripheralDelegate {
    public func peripheral(_ peripheral: CBPeripheral, didDiscoverServices error: Error?) {
        let id = peripheral.identifier.uuidString
        let services = peripheral.services ?? []
        if error != nil || services.isEmpty {
            return answer(id, error: error, .characteristics(characteristics: []))
        }
        discovering[id] = services.count
        services.forEach { peripheral.discoverCharacteristics(nil, for: $0) }
    }

    public func peripheral(_ peripheral: CBPeripheral, didDiscoverCharacteristicsFor service: CBService, error: Error?) {
        let id = peripheral.identifier.uuidString
        let left = (discovering[id] ?? 1) - 1
        discovering[id] = left
        guard left == 0 else { return }
        let found = (peripheral.services ?? []).flatMap { service in
            (service.characteristics ?? []).map { characteristic in
                HostCharacteristic(
                    service: fullUuid(service.uuid),
                    uuid: fullUuid(characteristic.uuid),
                    // CoreBluetooth's bits are the GATT declaration's.
                    properties: UInt8(truncatingIfNeeded: characteristic.properties.rawValue)
                )
            }
        }
        answer(id, error: error, .characteristics(characteristics: found))
    }

    public func peripheral(_ peripheral: CBPeripheral, didUpdateValueFor characteristic: CBCharacteristic, error: Error?) {
        let id = peripheral.identifier.uuidString
        if case .read(let uuid)? = pending[id]?.operation, uuid == characteristic.uuid {
            return answer(id, error: error, .value(value: characteristic.value ?? Data()))
        }
        guard error == nil, let bytes = characteristic.value else { return }
        _ = try? sdk.feedHostBytes(device: id, characteristic: fullUuid(characteristic.uuid), bytes: bytes)
    }

    public func peripheral(_ peripheral: CBPeripheral, didWriteValueFor characteristic: CBCharacteristic, error: Error?) {
        answer(peripheral.identifier.uuidString, error: error, .done)
    }

    public func peripheral(_ peripheral: CBPeripheral, didUpdateNotificationStateFor characteristic: CBCharacteristic, error: Error?) {
        answer(peripheral.identifier.uuidString, error: error, .done)
    }
}

/// The 128-bit form the core uses; CoreBluetooth shortens SIG UUIDs ("2A52").
func fullUuid(_ uuid: CBUUID) -> String {
    let short = uuid.uuidString.lowercased()
    switch uuid.data.count {
    case 2: return "0000\(short)-0000-1000-8000-00805f9b34fb"
    case 4: return "\(short)-0000-1000-8000-00805f9b34fb"
    default: return short
    }
}
#endif
