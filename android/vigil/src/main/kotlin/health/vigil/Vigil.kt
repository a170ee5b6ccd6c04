package health.vigil

import health.vigil.core.AlertEvent
import health.vigil.core.BufferEvent
import health.vigil.core.ClockMode
import health.vigil.core.DeviceEvent
import health.vigil.core.DeviceKind
import health.vigil.core.ExportBatch
import health.vigil.core.HostReply
import health.vigil.core.HostRequest
import health.vigil.core.Network
import health.vigil.core.ReadingEvent
import health.vigil.core.SdkException
import health.vigil.core.Status
import health.vigil.core.SyncEvent
import health.vigil.core.TransportMode
import health.vigil.core.VigilConfig
import health.vigil.ffi.TokenProvider
import health.vigil.ffi.VigilListener
import health.vigil.ffi.VigilSdk
import java.util.concurrent.CopyOnWriteArrayList
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.withContext

/**
 * A configuration for a phone: the platform's own Bluetooth stack
 * ([TransportMode.HOST_FED]) on the wall clock, no server unless given;
 * everything else (sync interval, alert thresholds, buffer budget, ...)
 * keeps the SDK's defaults, which the generated [VigilConfig] takes from
 * the Rust core (one definition of each). Change one with `copy`, e.g.
 * `vigilConfig(path, patient).copy(syncInterval = 300u)`. Batches go every
 * `syncInterval` seconds, and every `syncIntervalWhenStable` (an hour by
 * default) while glucose is steady: a steady patient's data reaches the
 * clinician up to that late; alerts never wait.
 */
fun vigilConfig(
    storagePath: String,
    patientId: String,
    serverUrl: String? = null,
    token: String? = null,
    transport: TransportMode = TransportMode.HOST_FED,
    clock: ClockMode = ClockMode.Wall,
): VigilConfig = VigilConfig(
    storagePath = storagePath,
    patientId = patientId,
    serverUrl = serverUrl,
    token = token,
    transport = transport,
    clock = clock,
)

/**
 * The Vigil SDK for Kotlin: suspend functions over the generated bindings
 * and cold [Flow]s of what the core reports.
 *
 * Threading: the blocking native calls run on [io] (never the caller's
 * thread, so they are safe from the main thread). The core delivers events
 * on one SDK-owned native thread, in order; the flows hand them to each
 * collector through an unbounded buffer, so a slow collector never stalls
 * the core (and never loses a reading).
 */
class Vigil private constructor(
    private val sdk: VigilSdk,
    private val hub: Hub,
    private val io: CoroutineDispatcher,
) : AutoCloseable {

    companion object {
        /** Opens the buffer and starts the SDK. Throws [VigilError]. */
        suspend fun open(
            config: VigilConfig,
            tokenProvider: TokenProvider? = null,
            io: CoroutineDispatcher = Dispatchers.IO,
        ): Vigil = withContext(io) {
            val hub = Hub()
            val sdk = mapped { VigilSdk(config, hub, tokenProvider) }
            Vigil(sdk, hub, io)
        }

        private inline fun <T> mapped(block: () -> T): T =
            try {
                block()
            } catch (e: SdkException) {
                throw e.toVigilError()
            }
    }

    private suspend fun <T> call(block: (VigilSdk) -> T): T = withContext(io) { mapped { block(sdk) } }

    /** Pairs a device to the patient. */
    suspend fun pair(device: String, kind: DeviceKind) = call { it.pair(device, kind) }

    /** Stops and forgets a device; its history stays in the buffer. */
    suspend fun forget(device: String) = call { it.forget(device) }

    /** Starts collecting from every paired device. */
    suspend fun start() = call { it.start() }

    /** Stops collecting; returns once every session has let go. */
    suspend fun stop() = call { it.stop() }

    /** Sends what the sync policy allows now; returns readings sent. */
    suspend fun syncNow(): ULong = call { it.syncNow() }

    /** The buffer and devices at a glance. */
    suspend fun status(): Status = call { it.status() }

    /**
     * Up to [limit] (1 to 10,000) stored readings of [streams] (`glucose`,
     * `heart_rate`, ...) that [target] has not confirmed, oldest first,
     * held-back readings included: the same batch again until
     * [confirmExport]. The cursor lives in the SDK's buffer, so an export
     * resumes after a kill, and readings stored before the app started
     * exporting are exported too (unless the buffer evicted them).
     */
    suspend fun exportBatch(target: String, streams: List<String>, limit: Int): ExportBatch =
        call { it.exportBatch(target, streams, limit.coerceAtLeast(0).toUInt()) }

    /**
     * The series that stands for the patient: of every stored reading of
     * [quantity] (`glucose`, `heart_rate`, `spo2`) measured in
     * [fromMs]..[toMs] (at most 24 h), one reading per coincident moment,
     * the one the precedence policy picks (devices ranked by the kind they
     * were paired as), unchanged, in time order. [readings] and
     * [exportBatch] stay raw: every reading of every device.
     */
    suspend fun resolvedReadings(quantity: String, fromMs: Long, toMs: Long): List<ReadingEvent> =
        call { it.resolvedReadings(quantity, fromMs, toMs) }

    /** [target] stored the batch that came with [cursor]; never moves the cursor back. */
    suspend fun confirmExport(target: String, cursor: ULong) = call { it.confirmExport(target, cursor) }

    /** The phone's network changed. */
    suspend fun setNetwork(network: Network) = call { it.setNetwork(network) }

    /** The phone's battery changed. */
    suspend fun setPower(percent: Int, charging: Boolean) =
        call { it.setPower(percent.coerceIn(0, 100).toUByte(), charging) }

    /** Notification bytes from the platform's Bluetooth stack (host-fed). */
    suspend fun feedHostBytes(device: String, characteristic: String, bytes: ByteArray) =
        call { it.feedHostBytes(device, characteristic, bytes) }

    /** The platform's link to [device] went up or down (host-fed). */
    suspend fun hostConnection(device: String, connected: Boolean) =
        call { it.hostConnection(device, connected) }

    /** Answers a [HostRequest] (host-fed). */
    suspend fun completeHostRequest(token: ULong, reply: HostReply) =
        call { it.completeHostRequest(token, reply) }

    /** Every decoded reading, from subscription on. */
    fun readings(): Flow<ReadingEvent> = hub.flow(hub.readings)

    /** Every alert (start, re-alert, end), from subscription on. */
    fun alerts(): Flow<AlertEvent> = hub.flow(hub.alerts)

    /** Device events (connected, disconnected, stopped, ...). */
    fun deviceEvents(): Flow<DeviceEvent> = hub.flow(hub.devices)

    /** Sync events. */
    fun syncEvents(): Flow<SyncEvent> = hub.flow(hub.syncs)

    /** Buffer pressure and eviction events. */
    fun bufferEvents(): Flow<BufferEvent> = hub.flow(hub.buffers)

    /** Requests for the platform's Bluetooth stack (host-fed transport). */
    fun hostRequests(): Flow<HostRequest> = hub.flow(hub.hosts)

    /** Collectors currently subscribed (for tests of cancellation). */
    internal fun subscriberCount(): Int = hub.count()

    /** Stops everything and frees the native SDK. Blocks briefly. */
    override fun close() {
        try {
            sdk.shutdown()
        } catch (e: SdkException) {
            throw e.toVigilError()
        } finally {
            sdk.close()
        }
    }
}

/**
 * The one listener the core sees; fans each event out to the collectors
 * subscribed at that moment.
 */
internal class Hub : VigilListener {
    val readings = CopyOnWriteArrayList<(ReadingEvent) -> Unit>()
    val alerts = CopyOnWriteArrayList<(AlertEvent) -> Unit>()
    val devices = CopyOnWriteArrayList<(DeviceEvent) -> Unit>()
    val syncs = CopyOnWriteArrayList<(SyncEvent) -> Unit>()
    val buffers = CopyOnWriteArrayList<(BufferEvent) -> Unit>()
    val hosts = CopyOnWriteArrayList<(HostRequest) -> Unit>()

    fun count(): Int = readings.size + alerts.size + devices.size + syncs.size + buffers.size + hosts.size

    fun <T> flow(subscribers: CopyOnWriteArrayList<(T) -> Unit>): Flow<T> = callbackFlow {
        val sink: (T) -> Unit = { trySend(it) }
        subscribers.add(sink)
        awaitClose { subscribers.remove(sink) }
    }.buffer(Channel.UNLIMITED)

    override fun onReading(reading: ReadingEvent) = readings.forEach { it(reading) }
    override fun onAlert(alert: AlertEvent) = alerts.forEach { it(alert) }
    override fun onDeviceEvent(event: DeviceEvent) = devices.forEach { it(event) }
    override fun onSyncEvent(event: SyncEvent) = syncs.forEach { it(event) }
    override fun onBufferEvent(event: BufferEvent) = buffers.forEach { it(event) }
    override fun onHostRequest(request: HostRequest) = hosts.forEach { it(request) }
}
