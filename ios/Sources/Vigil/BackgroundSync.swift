#if canImport(BackgroundTasks) && os(iOS)
import BackgroundTasks
import Foundation

/// Syncs buffered readings when iOS wakes the app in the background.
///
/// Register once, before the app finishes launching, with the identifier
/// listed under `BGTaskSchedulerPermittedIdentifiers` in Info.plist:
///
///     BackgroundSync.register(identifier: "health.vigil.sync") { client }
public enum BackgroundSync {
    /// Registers the refresh handler and schedules the first refresh.
    public static func register(
        identifier: String,
        every interval: TimeInterval = 15 * 60,
        client: @escaping @Sendable () -> VigilClient?
    ) {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: identifier, using: nil) { task in
            guard let refresh = task as? BGAppRefreshTask else {
                task.setTaskCompleted(success: false)
                return
            }
            schedule(identifier: identifier, after: interval)
            let work = Task {
                do {
                    try await client()?.syncNow()
                    refresh.setTaskCompleted(success: true)
                } catch {
                    refresh.setTaskCompleted(success: false)
                }
            }
            refresh.expirationHandler = { work.cancel() }
        }
        schedule(identifier: identifier, after: interval)
    }

    /// Asks iOS for the next refresh no earlier than `after` seconds from now.
    public static func schedule(identifier: String, after interval: TimeInterval) {
        let request = BGAppRefreshTaskRequest(identifier: identifier)
        request.earliestBeginDate = Date(timeIntervalSinceNow: interval)
        try? BGTaskScheduler.shared.submit(request)
    }
}
#endif
