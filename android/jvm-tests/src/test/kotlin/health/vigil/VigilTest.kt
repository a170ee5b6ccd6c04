package health.vigil

import health.vigil.core.AlertEvent
import health.vigil.core.BufferEvent
import health.vigil.core.ClockMode
import health.vigil.core.DeviceEvent
import health.vigil.core.DeviceEventKind
import health.vigil.core.DeviceKind
import health.vigil.core.HostCharacteristic
import health.vigil.core.HostReply
import health.vigil.core.HostRequest
import health.vigil.core.ReadingEvent
import health.vigil.core.SyncEvent
import health.vigil.core.AlertConfig
import health.vigil.core.TransportMode
import health.vigil.core.VigilConfig
import health.vigil.ffi.VigilListener
import health.vigil.ffi.VigilSdk
import health.vigil.model.Phase
import java.io.File
import java.nio.file.Files
import java.time.Duration
import java.util.Collections
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.filter
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.assertThrows

private const val JAN_5_2026_MS = 1_767_571_200_000L
private const val HOUR_MS = 3_600_000uL

private fun tempDb(): String = File(Files.createTempDirectory("vigil-jvm").toFile(), "buffer.db").path

private fun simulated(hours: ULong, path: String = tempDb()) = vigilConfig(
    storagePath = path,
    patientId = "patient-1",
    transport = TransportMode.SIMULATED,
    clock = ClockMode.Simulated(startMs = JAN_5_2026_MS, runFor = Duration.ofMillis((hours * HOUR_MS).toLong())),
)

private fun nativeThreads(): Int = File("/proc/self/task").list()?.size ?: 0

private fun rssKiB(): Long = File("/proc/self/status").readLines()
    .first { it.startsWith("VmRSS:") }.split(Regex("\\s+"))[1].toLong()

@Timeout(value = 120, unit = TimeUnit.SECONDS)
class VigilTest {

    @Test
    fun `the config has the core's defaults, so an app names only what it changes`() {
        // Swift gets the same defaults from the same Rust attributes, which
        // a Rust test checks against VigilConfig::new.
        val generated = VigilConfig(
            storagePath = "buffer.db",
            patientId = "patient-1",
            transport = TransportMode.HOST_FED,
            clock = ClockMode.Wall,
        )
        assertEquals(vigilConfig(storagePath = "buffer.db", patientId = "patient-1"), generated)
        assertEquals(900u, generated.syncInterval)
        assertEquals(null, generated.serverUrl)
        assertEquals(null, generated.simulation)
        assertEquals(AlertConfig(), generated.alerts)
        assertEquals(54.0, generated.alerts.urgentLowMgDl)
        assertEquals(1_200u, generated.alerts.signalLossAfter)
        assertEquals(3u, generated.alerts.rateMinReadings)
        // One threshold changed, the others kept.
        val stricter = generated.copy(alerts = AlertConfig(lowMgDl = 75.0))
        assertEquals(75.0, stricter.alerts.lowMgDl)
        assertEquals(1_800u, stricter.alerts.realertLow)
    }

    @Test
    fun `simulated CGM readings and alerts arrive as flows`(): Unit = runBlocking {
        Vigil.open(simulated(48uL)).use { vigil ->
            vigil.pair("cgm-1", DeviceKind.CGM)
            val readings = async(start = CoroutineStart.UNDISPATCHED) {
                vigil.readings().filter { it.stream == "glucose" }.take(300).toList()
            }
            val alert = async(start = CoroutineStart.UNDISPATCHED) { vigil.alerts().first() }
            while (vigil.subscriberCount() < 2) delay(5)
            vigil.start()
            val got = withTimeout(60_000) { readings.await() }
            val firstAlert = withTimeout(60_000) { alert.await() }
            assertEquals(300, got.size)
            assertTrue(got.all { it.unit == "mg/dL" && it.device == "cgm-1" && it.value in 20.0..500.0 })
            // Sensor times move forward in 5-minute steps of simulated time.
            assertTrue(got.zipWithNext().all { (a, b) -> b.sensorTimeMs > a.sensorTimeMs })
            assertTrue(got.first().sensorTimeMs >= JAN_5_2026_MS)
            assertEquals("cgm-1", firstAlert.device)
            // The first alert heard opens its episode.
            assertEquals(Phase.START, firstAlert.phase)
            vigil.stop()
            val status = vigil.status()
            assertTrue(status.storedReadings >= 300uL, "stored ${status.storedReadings}")
            assertTrue(status.pendingAlerts >= 1uL)
            assertEquals(listOf("cgm-1"), status.devices)
            // Collectors are gone once their flows completed.
            assertEquals(0, vigil.subscriberCount())
        }
    }

    @Test
    fun `two CGMs on one patient resolve to one glucose reading per moment while readings stay raw`(): Unit = runBlocking {
        Vigil.open(simulated(2uL)).use { vigil ->
            vigil.pair("cgm-a", DeviceKind.CGM)
            vigil.pair("cgm-b", DeviceKind.CGM)
            val stopped = async(start = CoroutineStart.UNDISPATCHED) {
                vigil.deviceEvents().filter { it.kind == DeviceEventKind.STOPPED }.take(2).toList()
            }
            while (vigil.subscriberCount() < 1) delay(5)
            vigil.start()
            withTimeout(60_000) { stopped.await() }
            // Raw: every reading of both sensors.
            val raw = vigil.exportBatch("probe", listOf("glucose"), 10_000).readings
            assertEquals(setOf("cgm-a", "cgm-b"), raw.map { it.device }.toSet())
            // Resolved: one of them per 5-minute moment, unchanged.
            val resolved = vigil.resolvedReadings("glucose", JAN_5_2026_MS, JAN_5_2026_MS + 2 * 3_600_000L + 1)
            assertTrue(resolved.isNotEmpty())
            assertTrue(raw.containsAll(resolved))
            assertTrue(resolved.zipWithNext().all { (a, b) -> b.sensorTimeMs > a.sensorTimeMs })
            assertTrue(resolved.size <= raw.size / 2 + 1, "${resolved.size} resolved of ${raw.size}")
            assertThrows<VigilError.InvalidInput> {
                runBlocking { vigil.resolvedReadings("insulin", JAN_5_2026_MS, JAN_5_2026_MS + 1) }
            }
        }
    }

    @Test
    fun `an export walks the buffer from its cursor, which outlives the SDK object`(): Unit = runBlocking {
        val path = tempDb()
        val unconfirmed = Vigil.open(simulated(2uL, path)).use { vigil ->
            vigil.pair("cgm-1", DeviceKind.CGM)
            val stopped = async(start = CoroutineStart.UNDISPATCHED) { vigil.deviceEvents().first { it.kind == DeviceEventKind.STOPPED } }
            while (vigil.subscriberCount() < 1) delay(5)
            vigil.start()
            withTimeout(60_000) { stopped.await() }
            // Readings decoded before anyone exported are there to export.
            val batch = vigil.exportBatch("health_connect", listOf("glucose"), 10)
            assertEquals(10, batch.readings.size)
            assertTrue(batch.readings.all { it.stream == "glucose" })
            vigil.confirmExport("health_connect", batch.cursor)
            val next = vigil.exportBatch("health_connect", listOf("glucose"), 10)
            assertTrue(next.readings.first().sensorTimeMs > batch.readings.last().sensorTimeMs)
            assertThrows<VigilError.InvalidInput> { runBlocking { vigil.exportBatch("health_connect", listOf("insulin"), 10) } }
            assertThrows<VigilError.InvalidInput> { runBlocking { vigil.exportBatch("", listOf("glucose"), 10) } }
            assertThrows<VigilError.InvalidInput> { runBlocking { vigil.exportBatch("health_connect", listOf("glucose"), 0) } }
            next
        }
        // A new SDK object on the same buffer goes on after the confirmed
        // batch: the unconfirmed one comes again.
        Vigil.open(simulated(1uL, path)).use { vigil ->
            assertEquals(unconfirmed, vigil.exportBatch("health_connect", listOf("glucose"), 10))
        }
    }

    @Test
    fun `cancelling a collector unsubscribes it and collection goes on`(): Unit = runBlocking {
        Vigil.open(simulated(24uL * 365uL)).use { vigil ->
            vigil.pair("cgm-1", DeviceKind.CGM)
            var seen = 0
            val job = launch(start = CoroutineStart.UNDISPATCHED) { vigil.readings().collect { seen++ } }
            while (vigil.subscriberCount() < 1) delay(5)
            vigil.start()
            withTimeout(30_000) { while (seen < 20) delay(5) }
            job.cancel()
            job.join()
            assertEquals(0, vigil.subscriberCount())
            // The core keeps collecting with nobody listening.
            val before = vigil.status().storedReadings
            withTimeout(30_000) { while (vigil.status().storedReadings <= before) delay(10) }
            vigil.stop()
        }
    }

    @Test
    fun `errors map onto the sealed hierarchy`(): Unit = runBlocking {
        assertThrows<VigilError.InvalidInput> {
            runBlocking { Vigil.open(vigilConfig(tempDb(), " ")) }
        }
        val junk = tempDb()
        File(junk).writeBytes(ByteArray(4096) { 7 })
        val storage = assertThrows<VigilError.Storage> { runBlocking { Vigil.open(vigilConfig(junk, "p")) } }
        assertTrue(storage.message!!.isNotBlank())
        Vigil.open(simulated(1uL)).use { vigil ->
            assertThrows<VigilError.NotAvailable> { runBlocking { vigil.start() } }
            assertThrows<VigilError.InvalidInput> { runBlocking { vigil.forget("never-paired") } }
            val sync = assertThrows<VigilError.NotAvailable> { runBlocking { vigil.syncNow() } }
            assertTrue(sync.message!!.contains("server_url"))
            assertThrows<VigilError.NotAvailable> {
                runBlocking { vigil.feedHostBytes("x", "2a37", byteArrayOf(0, 60)) }
            }
        }
        val closed = Vigil.open(simulated(1uL))
        closed.close()
        // A closed SDK refuses politely instead of crashing the process.
        assertThrows<Exception> { runBlocking { closed.status() } }
    }

    @Test
    fun `callbacks arrive on one SDK thread, never the caller's`() {
        val threads = Collections.synchronizedSet(mutableSetOf<Long>())
        val names = Collections.synchronizedSet(mutableSetOf<String>())
        val got = CountDownLatch(50)
        val listener = object : VigilListener {
            // JNA attaches the native thread anew for each callback (a new
            // java.lang.Thread every time), so the native thread is what
            // identifies it: its kernel name and id.
            private fun note() {
                names.add(File("/proc/thread-self/comm").readText().trim())
                threads.add(File("/proc/thread-self").canonicalFile.name.toLong())
            }
            override fun onReading(reading: ReadingEvent) { note(); got.countDown() }
            override fun onAlert(alert: AlertEvent) = note()
            override fun onDeviceEvent(event: DeviceEvent) = note()
            override fun onSyncEvent(event: SyncEvent) = note()
            override fun onBufferEvent(event: BufferEvent) = note()
            override fun onHostRequest(request: HostRequest) = note()
        }
        val sdk = VigilSdk(simulated(24uL), listener, null)
        try {
            sdk.pair("cgm-1", DeviceKind.CGM)
            sdk.start()
            assertTrue(got.await(60, TimeUnit.SECONDS))
            sdk.stop()
        } finally {
            sdk.shutdown()
            sdk.close()
        }
        assertEquals(setOf("vigil-callbacks"), names.toSet())
        assertEquals(1, threads.size, "callbacks came on native threads $threads")
        val me = File("/proc/thread-self").canonicalFile.name.toLong()
        assertNotEquals(me, threads.first())
    }

    @Test
    fun `host-fed heart rate strap from real GATT bytes`(): Unit = runBlocking {
        val config = vigilConfig(tempDb(), "patient-1", transport = TransportMode.HOST_FED)
        Vigil.open(config).use { vigil ->
            vigil.pair("AA:BB:CC:DD:EE:FF", DeviceKind.HEART_RATE)
            // Play the platform's Bluetooth stack: answer what the core asks.
            val subscribed = CountDownLatch(1)
            val host = launch(start = CoroutineStart.UNDISPATCHED) {
                vigil.hostRequests().collect { r ->
                    val reply = when (r.command) {
                        "discover" -> HostReply.Characteristics(
                            listOf(HostCharacteristic(service = "180d", uuid = "2a37", properties = 0x10u)),
                        )
                        else -> HostReply.Done
                    }
                    vigil.completeHostRequest(r.token, reply)
                    if (r.command == "subscribe" && r.characteristic?.startsWith("00002a37") == true) {
                        subscribed.countDown()
                    }
                }
            }
            val readings = async(start = CoroutineStart.UNDISPATCHED) {
                vigil.readings().take(3).toList()
            }
            while (vigil.subscriberCount() < 2) delay(5)
            vigil.start()
            withTimeout(20_000) { while (subscribed.count > 0) delay(5) }
            // Heart Rate Measurement 0x2A37: flags 0x00 (UINT8 bpm), then bpm.
            for (bpm in listOf(61, 72, 83)) {
                vigil.feedHostBytes("AA:BB:CC:DD:EE:FF", "2A37", byteArrayOf(0x00, bpm.toByte()))
            }
            val got = withTimeout(20_000) { readings.await() }
            assertEquals(listOf(61.0, 72.0, 83.0), got.map { it.value })
            assertTrue(got.all { it.stream == "heart_rate" && it.device == "AA:BB:CC:DD:EE:FF" })
            // A malformed frame is refused as a device event, never a reading.
            val corrupt = async(start = CoroutineStart.UNDISPATCHED) {
                vigil.deviceEvents().first { it.kind == DeviceEventKind.CORRUPT_FRAME }
            }
            // The flow subscribes once its producer runs: wait for it.
            while (vigil.subscriberCount() < 2) delay(5)
            vigil.feedHostBytes("AA:BB:CC:DD:EE:FF", "2a37", byteArrayOf(0x01))
            withTimeout(20_000) { corrupt.await() }
            assertThrows<VigilError.InvalidInput> {
                runBlocking { vigil.feedHostBytes("AA:BB:CC:DD:EE:FF", "not-a-uuid", byteArrayOf(0)) }
            }
            vigil.stop()
            host.cancel()
        }
    }

    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    fun `200 start-stop cycles keep threads and memory bounded`(): Unit = runBlocking {
        Vigil.open(simulated(24uL * 365uL)).use { vigil ->
            vigil.pair("cgm-1", DeviceKind.CGM)
            var threadsBefore = 0
            var rssBefore = 0L
            repeat(200) { i ->
                vigil.start()
                vigil.stop()
                if (i == 19) {
                    System.gc()
                    threadsBefore = nativeThreads()
                    rssBefore = rssKiB()
                }
            }
            System.gc()
            val threadsAfter = nativeThreads()
            val rssAfter = rssKiB()
            println("cycles: threads $threadsBefore -> $threadsAfter, RSS $rssBefore -> $rssAfter KiB")
            assertTrue(threadsAfter <= threadsBefore + 2, "threads $threadsBefore -> $threadsAfter")
            assertTrue(rssAfter - rssBefore < 64 * 1024, "RSS $rssBefore -> $rssAfter KiB")
            assertEquals(false, vigil.status().running)
        }
    }
}
