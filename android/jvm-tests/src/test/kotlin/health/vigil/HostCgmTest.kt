package health.vigil

import health.vigil.core.DeviceKind
import health.vigil.core.HostCharacteristic
import health.vigil.core.HostReply
import health.vigil.core.TransportMode
import java.io.File
import java.nio.file.Files
import java.time.ZoneOffset
import java.time.ZonedDateTime
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.filter
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout

private const val CGM = "cgm-host-1"

/** CGM Measurement 0x2AA7 without optional fields or E2E-CRC: size, flags, SFLOAT glucose, time offset. */
private fun cgmMeasurement(mgDl: Int, offsetMin: Int): ByteArray =
    byteArrayOf(6, 0, (mgDl and 0xFF).toByte(), ((mgDl shr 8) and 0x0F).toByte(),
        (offsetMin and 0xFF).toByte(), (offsetMin shr 8).toByte())

/**
 * The app runs Bluetooth itself and hands the core the exact GATT bytes of
 * a CGM: the core's session reads Feature, Session Start Time and Status,
 * backfills through RACP, then takes live measurements.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class HostCgmTest {
    @Test
    fun `host-fed CGM backfill and live measurement from real GATT bytes`(): Unit = runBlocking {
        val db = File(Files.createTempDirectory("vigil-jvm").toFile(), "buffer.db").path
        Vigil.open(vigilConfig(db, "patient-1", transport = TransportMode.HOST_FED)).use { vigil ->
            vigil.pair(CGM, DeviceKind.CGM)
            // The sensor session began 60 minutes ago (UTC, no DST).
            val start = ZonedDateTime.now(ZoneOffset.UTC).minusMinutes(60)
            val sessionStart = byteArrayOf(
                (start.year and 0xFF).toByte(), (start.year shr 8).toByte(), start.monthValue.toByte(),
                start.dayOfMonth.toByte(), start.hour.toByte(), start.minute.toByte(), start.second.toByte(),
                0, 0,
            )
            var backfilled = false
            val host = launch(start = CoroutineStart.UNDISPATCHED) {
                vigil.hostRequests().collect { r ->
                    val c = r.characteristic?.substring(4, 8)
                    val reply = when {
                        r.command == "discover" -> HostReply.Characteristics(
                            listOf(
                                HostCharacteristic("181f", "2aa7", 0x10u),
                                HostCharacteristic("181f", "2a52", 0x28u),
                                HostCharacteristic("181f", "2aa8", 0x02u),
                                HostCharacteristic("181f", "2aa9", 0x02u),
                                HostCharacteristic("181f", "2aaa", 0x02u),
                            ),
                        )
                        // Feature: no optional features, interstitial fluid,
                        // subcutaneous tissue, E2E-CRC not supported.
                        r.command == "read" && c == "2aa8" -> HostReply.Value(byteArrayOf(0, 0, 0, 0x55, -1, -1))
                        r.command == "read" && c == "2aaa" -> HostReply.Value(sessionStart)
                        // Status: time offset 60 min, no status bits.
                        r.command == "read" && c == "2aa9" -> HostReply.Value(byteArrayOf(60, 0, 0, 0, 0))
                        else -> HostReply.Done
                    }
                    vigil.completeHostRequest(r.token, reply)
                    if (r.command == "write" && c == "2a52" && !backfilled) {
                        backfilled = true
                        // The sensor's stored records, then RACP "success".
                        vigil.feedHostBytes(CGM, "2aa7", cgmMeasurement(110, 50))
                        vigil.feedHostBytes(CGM, "2aa7", cgmMeasurement(104, 55))
                        vigil.feedHostBytes(CGM, "2a52", byteArrayOf(0x06, 0x00, 0x01, 0x01))
                    } else if (r.command == "write" && c == "2a52") {
                        vigil.feedHostBytes(CGM, "2a52", byteArrayOf(0x06, 0x00, 0x01, 0x06))
                    }
                }
            }
            val readings = async(start = CoroutineStart.UNDISPATCHED) {
                vigil.readings().filter { it.stream == "glucose" }.take(3).toList()
            }
            while (vigil.subscriberCount() < 2) delay(5)
            vigil.start()
            withTimeout(20_000) { while (vigil.status().storedReadings < 2uL) delay(10) }
            // A live notification, 5 minutes after the last stored record.
            vigil.feedHostBytes(CGM, "2AA7", cgmMeasurement(97, 60))
            val got = withTimeout(20_000) { readings.await() }
            assertEquals(listOf(110.0, 104.0, 97.0), got.map { it.value })
            assertEquals(listOf(50uL, 55uL, 60uL), got.map { it.sequence })
            // Offsets map onto absolute time from the session start.
            val expected60 = start.withNano(0).plusMinutes(60).toInstant().toEpochMilli()
            assertTrue(kotlin.math.abs(got[2].sensorTimeMs - expected60) <= 60_000,
                "sensor time ${got[2].sensorTimeMs} vs $expected60")
            vigil.stop()
            host.cancel()
        }
    }
}
