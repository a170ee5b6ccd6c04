package health.vigil.android

import androidx.health.connect.client.records.BloodGlucoseRecord
import androidx.health.connect.client.records.HeartRateRecord
import androidx.health.connect.client.records.OxygenSaturationRecord
import health.vigil.ffi.Reading
import java.io.IOException
import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
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

private fun reading(stream: String, seq: Int, value: Double) = Reading(
    device = "cgm-1", stream = stream, value = value, unit = if (stream == "glucose") "mg/dL" else "/min",
    sensorTimeMs = 1_700_000_000_000L + seq * 300_000L, receiveTimeMs = 1_700_000_000_000L + seq * 300_000L,
    sequence = seq.toULong(),
)

@RunWith(RobolectricTestRunner::class)
@Config(sdk = [34])
class HealthExportTest {
    private val context = RuntimeEnvironment.getApplication()
    private var now = 0L

    private fun exporter(store: HealthStore, types: Set<ExportType>, quota: ExportQuota, name: String) =
        HealthExporter(context, store, types, quota, { now }, name)

    @Test
    fun only_opted_in_types_are_exported_in_quota_sized_batches(): Unit = runBlocking {
        val store = FakeStore()
        exporter(store, setOf(ExportType.GLUCOSE), ExportQuota(maxRecordsPerCall = 3), "a.sqlite").use { e ->
            (1..7).forEach { e.record(reading("glucose", it, 100.0 + it)) }
            e.record(reading("heart_rate", 1, 60.0))
            assertEquals(7L, e.pending())
            assertEquals(7, e.exportPending())
            assertEquals(listOf(3, 3, 1), store.callSizes)
            assertEquals((1..7).map { 100.0 + it }, store.records.values.map { it.value })
            assertTrue(store.records.values.all { it.type == ExportType.GLUCOSE })
            assertEquals(0L, e.pending())
        }
    }

    @Test
    fun the_size_limit_bounds_a_call_and_the_call_quota_defers_the_rest_to_the_next_window(): Unit = runBlocking {
        val store = FakeStore()
        // 5 MB a call at 1 MB a record: 5 records a call; 2 calls per window.
        val quota = ExportQuota(callsPerWindow = 2, windowMs = 900_000, bytesPerRecord = 1024L * 1024)
        exporter(store, setOf(ExportType.GLUCOSE), quota, "b.sqlite").use { e ->
            (1..14).forEach { e.record(reading("glucose", it, 90.0)) }
            assertEquals(10, e.exportPending())
            assertEquals(listOf(5, 5), store.callSizes)
            assertEquals(4L, e.pending())
            now += 899_999
            assertEquals(0, e.exportPending())
            now += 1
            assertEquals(4, e.exportPending())
            assertEquals(14, store.records.size)
        }
    }

    @Test
    fun an_interrupted_export_resumes_where_it_stopped_and_a_retry_replaces_not_duplicates(): Unit = runBlocking {
        val store = FakeStore().apply { failCall = 2; lostAnswer = true }
        exporter(store, setOf(ExportType.GLUCOSE, ExportType.HEART_RATE), ExportQuota(maxRecordsPerCall = 2), "c.sqlite")
            .use { e ->
                (1..5).forEach { e.record(reading("glucose", it, 80.0 + it)) }
                try {
                    e.exportPending()
                    fail("the second call fails")
                } catch (expected: IOException) {
                    // The first batch was taken; the failed one stays first.
                }
                assertEquals(3L, e.pending())
                // A reading delivered twice is journalled once.
                e.record(reading("glucose", 5, 85.0))
                assertEquals(3L, e.pending())
                assertEquals(3, e.exportPending())
                assertEquals(listOf(2, 2, 2, 1), store.callSizes)
                // Batch two went twice (its answer was lost): same ids, no duplicate, no gap.
                assertEquals((1..5).map { "cgm-1/glucose/$it/${1_700_000_000_000L + it * 300_000L}" }, store.records.keys.toList())
            }
        // The journal survives the exporter: a new one finds nothing left.
        exporter(store, setOf(ExportType.GLUCOSE), ExportQuota(), "c.sqlite").use { assertEquals(0L, it.pending()) }
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
