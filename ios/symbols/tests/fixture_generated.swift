// A small file in the shape uniffi emits, for the checker's own tests.
import Foundation

public protocol SensorSdkProtocol: AnyObject, Sendable {
    func pair(device: String, kind: DeviceKind) throws
    func status() throws -> Status
}

open class SensorSdk: SensorSdkProtocol, @unchecked Sendable {
    fileprivate let pointer: UnsafeMutableRawPointer!

    public convenience init(config: Config, listener: Listener, tokenProvider: TokenProvider?) throws {
        let pointer = try rustCall { "}" }
        self.init(unsafeFromRawPointer: pointer)
    }

    open func pair(device: String, kind: DeviceKind) throws {
        try rustCall { _ in
            let local = 1
        }
    }

    open func status() throws -> Status {
        return try FfiConverterTypeStatus.lift(rustCall { _ in 0 })
    }

    open func setPower(percent: UInt8, charging: Bool) throws {}
}

public struct Status {
    public var devices: [String]
    public var running: Bool
    public var lastSyncMs: Int64?

    public init(devices: [String], running: Bool, lastSyncMs: Int64?) {
        self.devices = devices
        self.running = running
        self.lastSyncMs = lastSyncMs
    }
}

extension Status: Equatable, Hashable {
    public static func ==(lhs: Status, rhs: Status) -> Bool { true }
}

public struct Config {
    public var path: String

    public init(path: String) {
        self.path = path
    }
}

public enum DeviceKind {
    case cgm
    case heartRate
}

public enum HostReply {
    case done
    case value(value: Data
    )
    case failed(message: String)
}

public enum SdkError: Swift.Error {
    case Storage(String)
    case InvalidInput(String)
}

public protocol Listener: AnyObject, Sendable {
    func onReading(reading: Status)
    func onHostRequest(request: HostReply)
}

public protocol TokenProvider: AnyObject, Sendable {
    func token() -> String?
}

public func describeKind(kind: DeviceKind) -> String {
    return ""
}
