package health.vigil.android

import android.content.ContentValues
import android.content.Context
import android.database.sqlite.SQLiteDatabase
import android.database.sqlite.SQLiteOpenHelper
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
import health.vigil.ffi.Reading
import java.time.Instant
import java.time.ZoneId
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.launch

/**
 * Export of the patient's readings to the phone's health store (Health
 * Connect), opted in per data type.
 *
 * Where it sits: after decoding, beside the buffer. [attach] takes every
 * reading of an opted-in type from [Vigil.readings] into a small journal
 * (SQLite, beside the SDK's buffer) before anything else; [exportPending]
 * sends the journal in order, in batches, and removes a batch only once the
 * store took it. So an export cut short (process killed, store refusing,
 * quota spent) resumes at the first reading not yet taken, and nothing
 * between is skipped. Readings decoded while no exporter was attached
 * (before the user opted in) are not exported: the core has no query of its
 * buffer by reading yet.
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

/** Exports the readings of the opted-in [types] to [store]; see [ExportType]. */
class HealthExporter(
    context: Context,
    private val store: HealthStore,
    types: Set<ExportType>,
    private val quota: ExportQuota = ExportQuota(),
    private val nowMs: () -> Long = System::currentTimeMillis,
    journalName: String = "vigil-health-export.sqlite",
) : AutoCloseable {
    private val streams = types.associateBy { it.stream }
    private val journal = Journal(context.applicationContext, journalName)

    /** Start times of the calls made in the current quota window. */
    private val calls = ArrayDeque<Long>()

    /** Journals every opted-in reading the SDK decodes, until [scope] ends. */
    fun attach(vigil: Vigil, scope: CoroutineScope): Job = scope.launch {
        vigil.readings().collect { record(it) }
    }

    /** Journals one reading if its type is opted in (what [attach] does). */
    fun record(reading: Reading) {
        val type = streams[reading.stream] ?: return
        journal.add(
            ExportRecord(
                "${reading.device}/${reading.stream}/${reading.sequence}/${reading.sensorTimeMs}",
                type, reading.value, reading.unit, reading.sensorTimeMs, reading.device,
            ),
        )
    }

    /** Readings journalled and not yet taken by the store. */
    fun pending(): Long = journal.count()

    /**
     * Sends the journal in order, a batch a call, until it is empty or the
     * quota window has no call left; returns the records the store took.
     * A failing call throws after the batches before it were taken and
     * removed; the failed batch stays first for the next pass.
     */
    suspend fun exportPending(): Int {
        var sent = 0
        while (true) {
            val batch = journal.first(quota.batch)
            if (batch.isEmpty()) return sent
            val now = nowMs()
            while (calls.isNotEmpty() && now - calls.first() >= quota.windowMs) calls.removeFirst()
            if (calls.size >= quota.callsPerWindow) return sent
            calls.addLast(now)
            store.insert(batch.map { it.second })
            journal.remove(batch.last().first)
            sent += batch.size
        }
    }

    override fun close() = journal.close()

    /** The journal: readings in arrival order; a row id is the export cursor. */
    private class Journal(context: Context, name: String) : SQLiteOpenHelper(context, name, null, 1) {
        override fun onCreate(db: SQLiteDatabase) {
            db.execSQL(
                "CREATE TABLE pending (id INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL UNIQUE, " +
                    "type TEXT NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, time_ms INTEGER NOT NULL, " +
                    "device TEXT NOT NULL)",
            )
        }

        override fun onUpgrade(db: SQLiteDatabase, oldVersion: Int, newVersion: Int) = Unit

        fun add(r: ExportRecord) {
            val row = ContentValues().apply {
                put("client_id", r.clientRecordId)
                put("type", r.type.name)
                put("value", r.value)
                put("unit", r.unit)
                put("time_ms", r.timeMs)
                put("device", r.device)
            }
            // A reading delivered twice is journalled once.
            writableDatabase.insertWithOnConflict("pending", null, row, SQLiteDatabase.CONFLICT_IGNORE)
        }

        fun first(limit: Int): List<Pair<Long, ExportRecord>> =
            readableDatabase.rawQuery(
                "SELECT id, client_id, type, value, unit, time_ms, device FROM pending ORDER BY id LIMIT ?",
                arrayOf(limit.toString()),
            ).use { c ->
                buildList {
                    while (c.moveToNext()) {
                        val type = ExportType.entries.firstOrNull { it.name == c.getString(2) } ?: continue
                        add(c.getLong(0) to ExportRecord(c.getString(1), type, c.getDouble(3), c.getString(4), c.getLong(5), c.getString(6)))
                    }
                }
            }

        /** Everything up to [lastId] was taken by the store. */
        fun remove(lastId: Long) {
            writableDatabase.delete("pending", "id <= ?", arrayOf(lastId.toString()))
        }

        fun count(): Long = readableDatabase.rawQuery("SELECT COUNT(*) FROM pending", null).use { c ->
            if (c.moveToFirst()) c.getLong(0) else 0
        }
    }
}
