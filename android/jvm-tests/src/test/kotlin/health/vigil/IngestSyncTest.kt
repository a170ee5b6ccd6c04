package health.vigil

import health.vigil.core.ClockMode
import health.vigil.core.DeviceEventKind
import health.vigil.core.DeviceKind
import health.vigil.core.Network
import health.vigil.core.TransportMode
import java.io.File
import java.net.HttpURLConnection
import java.net.ServerSocket
import java.net.Socket
import java.net.URI
import java.nio.file.Files
import java.time.Duration
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.assertThrows

/**
 * The Kotlin layer syncing to a real `vigil-ingest` process over loopback
 * HTTP: the binary comes from `-Dvigil.ingest` (test-kotlin.sh builds it);
 * without it the test fails rather than skips.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class IngestSyncTest {
    private lateinit var dir: File
    private lateinit var db: File
    private var server: Process? = null

    private val binary: String by lazy {
        val path = System.getProperty("vigil.ingest")
            ?: error("-Dvigil.ingest=<path to vigil-ingest> is not set (bindings/test-kotlin.sh sets it)")
        require(File(path).canExecute()) { "vigil-ingest not found at $path" }
        path
    }

    /** Runs an admin command of the service and returns its one line of output. */
    private fun admin(vararg args: String): String {
        val p = ProcessBuilder(listOf(binary, "--database", db.path) + args)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start()
        val out = p.inputStream.bufferedReader().readText().trim()
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "vigil-ingest ${args.first()} hung")
        assertEquals(0, p.exitValue(), "vigil-ingest ${args.joinToString(" ")} failed")
        return out.lines().last()
    }

    private fun freePort(): Int = ServerSocket(0).use { it.localPort }

    private fun serve(): Int {
        val port = freePort()
        server = ProcessBuilder(binary, "--database", db.path, "serve", "--listen", "127.0.0.1:$port")
            .redirectOutput(File(dir, "server.log"))
            .redirectErrorStream(true)
            .start()
        val until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        while (System.nanoTime() < until) {
            if (runCatching { Socket("127.0.0.1", port).close() }.isSuccess) return port
            check(server!!.isAlive) { "vigil-ingest serve exited: ${File(dir, "server.log").readText()}" }
            Thread.sleep(50)
        }
        error("vigil-ingest did not listen on $port")
    }

    private fun get(url: String, token: String): Pair<Int, String> {
        val c = URI(url).toURL().openConnection() as HttpURLConnection
        c.setRequestProperty("Authorization", "Bearer $token")
        c.connectTimeout = 5_000
        c.readTimeout = 10_000
        val code = c.responseCode
        val body = (if (code < 400) c.inputStream else c.errorStream)?.bufferedReader()?.readText() ?: ""
        return code to body
    }

    @BeforeEach
    fun setUp() {
        dir = Files.createTempDirectory("vigil-ingest-jvm").toFile()
        db = File(dir, "ingest.db")
    }

    @AfterEach
    fun tearDown() {
        server?.let {
            it.destroy()
            if (!it.waitFor(10, TimeUnit.SECONDS)) it.destroyForcibly()
        }
        dir.deleteRecursively()
    }

    @Test
    fun `simulated CGM syncs to a real vigil-ingest and a clinician reads it back`(): Unit = runBlocking {
        val patient = admin("patient", "add", "JVM synthetic patient").toLong()
        val deviceToken = admin("token", "add", "--patient", "$patient", "--role", "device")
        val clinicianToken = admin("clinician", "add", "jvm-clinician")
        assertEquals("assigned", admin("clinician", "assign", "jvm-clinician", "$patient"))
        val port = serve()
        val base = "http://127.0.0.1:$port"

        // Three simulated hours that ended an hour ago: the server takes
        // readings up to its own now, never from its future.
        val hour = 3_600_000L
        val start = System.currentTimeMillis() - 4 * hour
        val config = vigilConfig(
            storagePath = File(dir, "buffer.db").path,
            patientId = "$patient",
            serverUrl = base,
            token = deviceToken,
            transport = TransportMode.SIMULATED,
            clock = ClockMode.Simulated(startMs = start, runFor = Duration.ofHours(3)),
        )
        Vigil.open(config).use { vigil ->
            vigil.pair("cgm-1", DeviceKind.CGM)
            val glucose = mutableListOf<Long>()
            val collector = launch(start = CoroutineStart.UNDISPATCHED) {
                vigil.readings().collect { if (it.stream == "glucose") synchronized(glucose) { glucose += it.sensorTimeMs } }
            }
            val stopped = async(start = CoroutineStart.UNDISPATCHED) {
                vigil.deviceEvents().first { it.kind == DeviceEventKind.STOPPED }
            }
            withTimeout(10_000) { while (vigil.subscriberCount() < 2) delay(5) }
            // Offline first: nothing can go, and sync says why.
            vigil.start()
            withTimeout(90_000) { stopped.await() }
            assertTrue(vigil.status().unsentReadings > 0uL)
            val subscribers = vigil.subscriberCount()
            val acked = async(start = CoroutineStart.UNDISPATCHED) {
                vigil.syncEvents().first { it.kind == "batch_acknowledged" }
            }
            withTimeout(10_000) { while (vigil.subscriberCount() <= subscribers) delay(5) }
            // Coming online starts a pass by itself; syncNow (what the
            // WorkManager worker calls) drives it to the end.
            vigil.setNetwork(Network.WIFI)
            withTimeout(60_000) {
                while (vigil.status().unsentReadings > 0uL) {
                    vigil.syncNow()
                    delay(20)
                }
            }
            withTimeout(10_000) { acked.await() }
            collector.cancel()
            val phone = synchronized(glucose) { glucose.toList() }
            assertTrue(phone.size >= 30, "only ${phone.size} glucose readings in 3 h")
            assertEquals(0uL, vigil.status().unsentReadings)
            assertTrue(vigil.status().lastSyncMs != null)

            // A clinician reads the same glucose back through the service.
            val from = java.time.Instant.ofEpochMilli(start - hour)
            val to = java.time.Instant.ofEpochMilli(System.currentTimeMillis())
            val (code, csv) = get("$base/v1/patients/$patient/readings.csv?from=$from&to=$to", clinicianToken)
            assertEquals(200, code, csv)
            val rows = csv.lines().drop(1).filter { it.isNotBlank() }
            assertEquals(phone.size, rows.size, "glucose rows on the server")
            // And a token the service never issued is refused.
            val (denied, _) = get("$base/v1/patients/$patient/readings.csv", "not-a-real-token")
            assertEquals(401, denied)
        }
    }

    @Test
    fun `a wrong token surfaces as an auth failure, and nothing is marked synced`(): Unit = runBlocking {
        val patient = admin("patient", "add", "JVM synthetic patient").toLong()
        val port = serve()
        val hour = 3_600_000L
        val config = vigilConfig(
            storagePath = File(dir, "buffer.db").path,
            patientId = "$patient",
            serverUrl = "http://127.0.0.1:$port",
            token = "vgl_wrong_token_for_this_test",
            transport = TransportMode.SIMULATED,
            clock = ClockMode.Simulated(startMs = System.currentTimeMillis() - 4 * hour, runFor = Duration.ofHours(3)),
        )
        Vigil.open(config).use { vigil ->
            vigil.pair("cgm-1", DeviceKind.CGM)
            val stopped = async(start = CoroutineStart.UNDISPATCHED) {
                vigil.deviceEvents().first { it.kind == DeviceEventKind.STOPPED }
            }
            withTimeout(10_000) { while (vigil.subscriberCount() < 1) delay(5) }
            vigil.start()
            withTimeout(60_000) { stopped.await() }
            vigil.setNetwork(Network.WIFI)
            val before = vigil.status().unsentReadings
            assertTrue(before > 0uL, "status after the run: ${vigil.status()}")
            val e = assertThrows<VigilError.Auth> { runBlocking { vigil.syncNow() } }
            assertTrue(e.message!!.contains("token"), e.message)
            assertEquals(before, vigil.status().unsentReadings)
        }
    }
}
