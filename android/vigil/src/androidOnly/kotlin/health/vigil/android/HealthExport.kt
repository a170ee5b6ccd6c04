package health.vigil.android

import androidx.health.connect.client.HealthConnectClient
import androidx.health.connect.client.records.BloodGlucoseRecord
import androidx.health.connect.client.records.HeartRateRecord
import androidx.health.connect.client.records.OxygenSaturationRecord
import androidx.health.connect.client.records.Record
import androidx.health.connect.client.records.metadata.Device
import androidx.health.connect.client.records.metadata.Metadata
import androidx.health.connect.client.units.BloodGlucose
import androidx.health.connect.client.units.Percentage
import health.vigil.Vigil
import health.vigil.core.ReadingEvent
import java.time.Instant
import java.time.ZoneId

/**
 * Export of the patient's readings to the phone's health store (Health
 * Connect), opted in per data type.
 *
 * Where it sits: beside sync, reading the SDK's own buffer. The export
 * cursor lives in that buffer ([Vigil.exportBatch], [Vigil.confirmExport]),
 * not in a journal of this layer: a journal filled from [Vigil.readings]
 * missed every reading decoded while no exporter listened (before the user
 * opted in, or while the app was not running), and kept a second copy of
 * the data. [HealthExporter.exportPending] takes the readings after the
 * cursor in order, in batches, and moves the cursor only once the store took
 * a batch. So an export cut short (process killed, store refusing, quota
 * spent) resumes at the first reading not yet taken, and nothing between is
 * skipped. Readings the buffer evicted before they were exported (a full
 * buffer, long after the cloud had them) cannot be exported.
 *
 * Each record carries the reading's identity as Health Connect's
 * `clientRecordId` and [RECORD_VERSION] as `clientRecordVersion`, so sending
 * a record again (a retry after a lost answer) replaces it, never duplicates.
 */
enum class ExportType(internal val stream: String) {
    /** CGM glucose, as `BloodGlucoseRecord` from interstitial fluid. */
    GLUCOSE("glucose"),

    /** Heart rate, as a `HeartRateRecord` series (one sample a record). */
    HEART_RATE("heart_rate"),

    /** SpO2, as `OxygenSaturationRecord`. */
    SPO2("spo2"),
}

/** One reading as the health store receives it. */
data class ExportRecord(
    /** The reading's identity (device, stream, sequence, sensor time): `clientRecordId`. */
    val clientRecordId: String,
    /** What kind of record it becomes. */
    val type: ExportType,
    /** Value in [unit]. */
    val value: Double,
    /** UCUM unit from the core. */
    val unit: String,
    /** Sensor time, Unix ms. */
    val timeMs: Long,
    /** The sensor's id, for the record's device metadata. */
    val device: String,
)

/**
 * The layer's own view of a health store: one call stores a batch whole or
 * throws. [HealthConnectStore] is the real one; tests put a fake behind it.
 */
interface HealthStore {
    /** Inserts or replaces (by client record id) every record of [records]. */
    suspend fun insert(records: List<ExportRecord>)
}

/** Health Connect behind [HealthStore]. */
class HealthConnectStore(private val client: HealthConnectClient) : HealthStore {
    override suspend fun insert(records: List<ExportRecord>) {
        client.insertRecords(records.map(::toRecord))
    }

    /** The mapping, usable without a client. */
    companion object {
        /** Maps one reading to its Health Connect record. */
        fun toRecord(r: ExportRecord): Record = mapRecord(r)
    }
}

private fun mapRecord(r: ExportRecord): Record {
    val time = Instant.ofEpochMilli(r.timeMs)
    val offset = ZoneId.systemDefault().rules.getOffset(time)
    val metadata = Metadata.autoRecorded(
        Device(type = Device.TYPE_UNKNOWN, manufacturer = null, model = r.device),
        r.clientRecordId,
        RECORD_VERSION,
    )
    return when (r.type) {
        ExportType.GLUCOSE -> BloodGlucoseRecord(
            time = time,
            zoneOffset = offset,
            metadata = metadata,
            level = BloodGlucose.milligramsPerDeciliter(r.value),
            specimenSource = BloodGlucoseRecord.SPECIMEN_SOURCE_INTERSTITIAL_FLUID,
            mealType = 0,
            relationToMeal = BloodGlucoseRecord.RELATION_TO_MEAL_UNKNOWN,
        )
        ExportType.HEART_RATE -> HeartRateRecord(
            startTime = time,
            startZoneOffset = offset,
            endTime = time.plusMillis(1),
            endZoneOffset = offset,
            samples = listOf(HeartRateRecord.Sample(time, r.value.toLong())),
            metadata = metadata,
        )
        ExportType.SPO2 -> OxygenSaturationRecord(
            time = time,
            zoneOffset = offset,
            percentage = Percentage(r.value),
            metadata = metadata,
        )
    }
}

/** Records are immutable once read: every export is version 1. */
const val RECORD_VERSION: Long = 1

/**
 * Health Connect's quotas, as the exporter respects them: a call counts once
 * whatever it carries, at most [callsPerWindow] calls per [windowMs], at most
 * [maxBytesPerCall] a call (estimated at [bytesPerRecord] a record, a bound
 * well above what one of these records takes).
 */
data class ExportQuota(
    val callsPerWindow: Int = 1_000,
    val windowMs: Long = 15 * 60 * 1_000L,
    val maxBytesPerCall: Long = 5L * 1024 * 1024,
    val bytesPerRecord: Long = 1_024,
    val maxRecordsPerCall: Int = 1_000,
) {
    /** Records in one call: as many as the size limit allows, at most [maxRecordsPerCall]. */
    val batch: Int get() = minOf(maxRecordsPerCall.toLong(), maxBytesPerCall / bytesPerRecord).toInt().coerceAtLeast(1)
}

/**
 * Exports the readings of the opted-in [types] that [vigil]'s buffer holds
 * to [store], under the export cursor named [target]; see [ExportType].
 */
class HealthExporter(
    private val vigil: Vigil,
    private val store: HealthStore,
    types: Set<ExportType>,
    private val quota: ExportQuota = ExportQuota(),
    private val nowMs: () -> Long = System::currentTimeMillis,
    private val target: String = DEFAULT_TARGET,
) {
    private val streams = types.associateBy { it.stream }

    /** Start times of the calls made in the current quota window. */
    private val calls = ArrayDeque<Long>()

    /**
     * Sends the readings after the cursor in order, a batch a call, until
     * none is left or the quota window has no call left; returns the
     * records the store took. A failing call throws after the batches
     * before it were taken and confirmed; the failed batch is the first of
     * the next pass.
     */
    suspend fun exportPending(): Int {
        if (streams.isEmpty()) return 0
        var sent = 0
        while (true) {
            val batch = vigil.exportBatch(target, streams.keys.toList(), quota.batch.coerceAtMost(MAX_BATCH))
            if (batch.readings.isEmpty()) return sent
            val now = nowMs()
            while (calls.isNotEmpty() && now - calls.first() >= quota.windowMs) calls.removeFirst()
            if (calls.size >= quota.callsPerWindow) return sent
            calls.addLast(now)
            val records = batch.readings.mapNotNull(::toExportRecord)
            store.insert(records)
            vigil.confirmExport(target, batch.cursor)
            sent += records.size
        }
    }

    private fun toExportRecord(reading: ReadingEvent): ExportRecord? {
        val type = streams[reading.stream] ?: return null
        return ExportRecord(
            clientRecordId(reading), type, reading.value, reading.unit, reading.sensorTimeMs, reading.device,
        )
    }

    /** Names and limits shared by every exporter. */
    companion object {
        /** The export cursor's name in the SDK's buffer. */
        const val DEFAULT_TARGET = "health_connect"

        /** The most readings the SDK hands over in one batch. */
        private const val MAX_BATCH = 10_000

        /** A reading's identity (device, stream, sequence, sensor time): its `clientRecordId`. */
        fun clientRecordId(reading: ReadingEvent): String =
            "${reading.device}/${reading.stream}/${reading.sequence}/${reading.sensorTimeMs}"
    }
}
