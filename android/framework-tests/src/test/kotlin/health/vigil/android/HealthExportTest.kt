package health.vigil.android

import androidx.health.connect.client.records.BloodGlucoseRecord
import androidx.health.connect.client.records.HeartRateRecord
import androidx.health.connect.client.records.OxygenSaturationRecord
import health.vigil.Vigil
import health.vigil.core.ClockMode
import health.vigil.core.DeviceEventKind
import health.vigil.core.DeviceKind
import health.vigil.core.TransportMode
import health.vigil.vigilConfig
import java.io.File
import java.io.IOException
import java.nio.file.Files
import java.time.Duration
import java.time.Instant
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.annotation.Config

/** A health store that keeps records by client record id, as Health Connect does. */
class FakeStore : HealthStore {
    val records = linkedMapOf<String, ExportRecord>()
    var calls = 0
    var callSizes = mutableListOf<Int>()

    /** Fail the call with this number (1-based), once; store it first if [lostAnswer]. */
    var failCall: Int? = null
    var lostAnswer = false

    override suspend fun insert(records: List<ExportRecord>) {
        calls++
        callSizes += records.size
        if (failCall == calls) {
            failCall = null
            if (lostAnswer) records.forEach { this.records[it.clientRecordId] = it }
            throw IOException("store unavailable")
        }
        records.forEach { this.records[it.clientRecordId] = it }
    }
}

/**
 * The Health Connect export through the real SDK: readings a simulated CGM
 * stored in the SDK's buffer (through the native library) go to a fake
 * store under the export cursor the buffer keeps.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [34])
class HealthExportTest {
    private lateinit var dir: File
    private var now = 0L

    @Before
    fun setUp() {
        dir = Files.createTempDirectory("vigil-export").toFile()
    }

    @After
    fun tearDown() {
        dir.deleteRecursively()
    }

    private suspend fun open(): Vigil = Vigil.open(
        vigilConfig(
            storagePath = File(dir, "buffer.db").path,
            patientId = "patient-1",
            transport = TransportMode.SIMULATED,
            clock = ClockMode.Simulated(startMs = Instant.now().toEpochMilli() - 4 * HOUR, runFor = Duration.ofHours(3)),
        ),
    )

    /** An SDK whose buffer holds three simulated hours of CGM readings, decoded before any exporter existed. */
    private suspend fun collected(): Vigil = coroutineScope {
        val vigil = open()
        vigil.pair("cgm-1", DeviceKind.CGM)
        val stopped = async(Dispatchers.IO, start = CoroutineStart.UNDISPATCHED) {
            vigil.deviceEvents().first { it.kind == DeviceEventKind.STOPPED }
        }
        withTimeout(10_000) { while (vigil.subscriberCount() < 1) delay(5) }
        vigil.start()
        withTimeout(90_000) { stopped.await() }
        vigil
    }

    /** Every stored glucose reading's identity, oldest first, read under a cursor of its own. */
    private suspend fun storedGlucose(vigil: Vigil): List<String> =
        vigil.exportBatch("probe", listOf("glucose"), 10_000).readings.map(HealthExporter::clientRecordId)

    private fun exporter(vigil: Vigil, store: HealthStore, types: Set<ExportType>, quota: ExportQuota) =
        HealthExporter(vigil, store, types, quota, { now })

    @Test
    fun readings_stored_before_the_exporter_existed_are_exported_in_quota_sized_batches(): Unit = runBlocking {
        collected().use { vigil ->
            val glucose = storedGlucose(vigil)
            assertTrue("only ${glucose.size} glucose readings", glucose.size > 20)
            val store = FakeStore()
            // Glucose and heart rate opted in; the CGM's trend stream is not exported.
            val e = exporter(vigil, store, setOf(ExportType.GLUCOSE, ExportType.HEART_RATE), ExportQuota(maxRecordsPerCall = 10))
            assertEquals(glucose.size, e.exportPending())
            assertEquals(glucose, store.records.keys.toList())
            assertTrue(store.records.values.all { it.type == ExportType.GLUCOSE && it.unit == "mg/dL" })
            assertTrue(store.callSizes.all { it <= 10 })
            assertEquals(glucose.size, store.callSizes.sum())
            // Everything confirmed: a second pass sends nothing.
            assertEquals(0, e.exportPending())
            assertEquals(glucose.size, store.callSizes.sum())
        }
    }

    @Test
    fun an_interrupted_export_resumes_where_it_stopped_even_in_a_new_sdk_on_the_same_buffer(): Unit = runBlocking {
        // The second call fails after the store kept its records (a lost answer).
        val store = FakeStore().apply { failCall = 2; lostAnswer = true }
        val glucose = collected().use { vigil ->
            val glucose = storedGlucose(vigil)
            val e = exporter(vigil, store, setOf(ExportType.GLUCOSE), ExportQuota(maxRecordsPerCall = 4))
            try {
                e.exportPending()
                fail("the second call fails")
            } catch (expected: IOException) {
                // The first batch was taken and confirmed; the failed one was not.
            }
            assertEquals(listOf(4, 4), store.callSizes)
            glucose
        }
        // The app is killed and started again: a new SDK on the same buffer file.
        open().use { vigil ->
            val e = exporter(vigil, store, setOf(ExportType.GLUCOSE), ExportQuota(maxRecordsPerCall = 4))
            assertEquals(glucose.size - 4, e.exportPending())
            // Only the failed batch went twice, replaced by client record id: no gap, no duplicate.
            assertEquals(glucose.size + 4, store.callSizes.sum())
            assertEquals(glucose, store.records.keys.toList())
            assertEquals(0, e.exportPending())
        }
        // The cursor survived the first SDK: a third one finds nothing left.
        open().use { vigil ->
            assertEquals(0, exporter(vigil, store, setOf(ExportType.GLUCOSE), ExportQuota()).exportPending())
        }
    }

    @Test
    fun the_size_limit_bounds_a_call_and_the_call_quota_defers_the_rest_to_the_next_window(): Unit = runBlocking {
        collected().use { vigil ->
            val glucose = storedGlucose(vigil)
            val store = FakeStore()
            // 5 MB a call at 1 MB a record: 5 records a call; 2 calls per window.
            val quota = ExportQuota(callsPerWindow = 2, windowMs = 900_000, bytesPerRecord = 1024L * 1024)
            val e = exporter(vigil, store, setOf(ExportType.GLUCOSE), quota)
            assertEquals(10, e.exportPending())
            assertEquals(listOf(5, 5), store.callSizes)
            now += 899_999
            assertEquals(0, e.exportPending())
            var windows = 1
            while (store.records.size < glucose.size) {
                now += 900_000
                windows++
                assertTrue(e.exportPending() <= 10)
            }
            assertEquals((glucose.size + 9) / 10, windows)
            assertTrue(store.callSizes.all { it <= 5 })
            assertEquals(glucose, store.records.keys.toList())
        }
    }

    @Test
    fun records_map_to_health_connect_types_with_client_id_and_version() {
        val hc = HealthConnectStore.Companion
        val glucose = hc.toRecord(ExportRecord("k1", ExportType.GLUCOSE, 97.0, "mg/dL", 1_700_000_000_000L, "cgm-1"))
        check(glucose is BloodGlucoseRecord)
        assertEquals(97.0, glucose.level.inMilligramsPerDeciliter, 1e-9)
        assertEquals(BloodGlucoseRecord.SPECIMEN_SOURCE_INTERSTITIAL_FLUID, glucose.specimenSource)
        assertEquals("k1", glucose.metadata.clientRecordId)
        assertEquals(RECORD_VERSION, glucose.metadata.clientRecordVersion)
        val hr = hc.toRecord(ExportRecord("k2", ExportType.HEART_RATE, 61.0, "/min", 1_700_000_000_000L, "hrm"))
        check(hr is HeartRateRecord)
        assertEquals(61L, hr.samples.single().beatsPerMinute)
        assertEquals("k2", hr.metadata.clientRecordId)
        val spo2 = hc.toRecord(ExportRecord("k3", ExportType.SPO2, 96.0, "%", 1_700_000_000_000L, "plx"))
        check(spo2 is OxygenSaturationRecord)
        assertEquals(96.0, spo2.percentage.value, 1e-9)
        assertEquals("k3", spo2.metadata.clientRecordId)
    }
}

private const val HOUR = 3_600_000L
