package health.vigil.android

import android.content.Context
import androidx.work.BackoffPolicy
import androidx.work.Data
import androidx.work.ForegroundUpdater
import androidx.work.ListenableWorker
import androidx.work.NetworkType
import androidx.work.ProgressUpdater
import androidx.work.WorkerFactory
import androidx.work.WorkerParameters
import androidx.work.impl.utils.taskexecutor.WorkManagerTaskExecutor
import health.vigil.Vigil
import health.vigil.core.ClockMode
import health.vigil.core.DeviceEventKind
import health.vigil.core.DeviceKind
import health.vigil.core.Network
import health.vigil.core.TransportMode
import health.vigil.vigilConfig
import java.io.File
import java.net.ServerSocket
import java.net.Socket
import java.nio.file.Files
import java.time.Duration
import java.time.Instant
import java.util.UUID
import java.util.concurrent.Executor
import java.util.concurrent.TimeUnit
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
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config

/** WorkerParameters need a factory; these tests create the worker themselves. */
private val NO_WORKERS = object : WorkerFactory() {
    override fun createWorker(appContext: Context, workerClassName: String, workerParameters: WorkerParameters) = null
}

/**
 * SyncWorker under WorkManager on Android 14: how it is scheduled, and what
 * it returns when it runs `syncNow` against a real `vigil-ingest` process on
 * loopback (the binary from -Dvigil.ingest; without it the test fails).
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [34], application = TestApp::class)
class SyncWorkerTest {
    private lateinit var app: TestApp
    private lateinit var dir: File
    private var server: Process? = null
    private val direct = Executor { it.run() }

    private val binary: String by lazy {
        val path = System.getProperty("vigil.ingest") ?: error("-Dvigil.ingest is not set")
        require(File(path).canExecute()) { "vigil-ingest not found at $path" }
        path
    }

    @Before
    fun setUp() {
        app = RuntimeEnvironment.getApplication() as TestApp
        dir = Files.createTempDirectory("vigil-worker").toFile()
    }

    @After
    fun tearDown() {
        server?.let {
            it.destroy()
            if (!it.waitFor(10, TimeUnit.SECONDS)) it.destroyForcibly()
        }
        dir.deleteRecursively()
    }

    private fun admin(vararg args: String): String {
        val p = ProcessBuilder(listOf(binary, "--database", File(dir, "ingest.db").path) + args)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start()
        val out = p.inputStream.bufferedReader().readText().trim()
        assertTrue("vigil-ingest ${args.first()} hung", p.waitFor(30, TimeUnit.SECONDS))
        assertEquals("vigil-ingest ${args.joinToString(" ")}", 0, p.exitValue())
        return out.lines().last()
    }

    private fun freePort(): Int = ServerSocket(0).use { it.localPort }

    private fun serve(port: Int) {
        val log = File(dir, "server.log")
        val process = ProcessBuilder(
            binary, "--database", File(dir, "ingest.db").path, "serve", "--listen", "127.0.0.1:$port",
        ).redirectOutput(log).redirectErrorStream(true).start()
        server = process
        // Wall time from java.time: Robolectric fakes System.currentTimeMillis and nanoTime.
        val until = Instant.now().plusSeconds(30)
        while (Instant.now().isBefore(until)) {
            if (runCatching { Socket("127.0.0.1", port).close() }.isSuccess) return
            check(process.isAlive) { "vigil-ingest serve exited: ${log.readText()}" }
            Thread.sleep(50)
        }
        error("vigil-ingest did not listen on $port")
    }

    /** A worker as WorkManager would create it, on attempt [attempt]. */
    private fun worker(attempt: Int): SyncWorker {
        val params = WorkerParameters(
            UUID.randomUUID(), Data.EMPTY, emptyList(), WorkerParameters.RuntimeExtras(), attempt, 0,
            direct, Dispatchers.Default, WorkManagerTaskExecutor(direct), NO_WORKERS,
            ProgressUpdater { _: Context, _: UUID, _: Data -> error("SyncWorker reports no progress") },
            ForegroundUpdater { _, _, _ -> error("SyncWorker never runs in the foreground") },
        )
        return SyncWorker(app, params)
    }

    /** An SDK with three simulated hours of CGM readings in its buffer, unsent. */
    private suspend fun collected(serverUrl: String, token: String, patient: String): Vigil = coroutineScope {
        val hour = 3_600_000L
        val vigil = Vigil.open(
            vigilConfig(
                storagePath = File(dir, "buffer.db").path,
                patientId = patient,
                serverUrl = serverUrl,
                token = token,
                transport = TransportMode.SIMULATED,
                clock = ClockMode.Simulated(startMs = Instant.now().toEpochMilli() - 4 * hour, runFor = Duration.ofHours(3)),
            ),
        )
        vigil.pair("cgm-1", DeviceKind.CGM)
        val stopped = async(Dispatchers.IO, start = CoroutineStart.UNDISPATCHED) {
            vigil.deviceEvents().first { it.kind == DeviceEventKind.STOPPED }
        }
        withTimeout(10_000) { while (vigil.subscriberCount() < 1) delay(5) }
        vigil.start()
        withTimeout(90_000) { stopped.await() }
        vigil.setNetwork(Network.WIFI)
        assertTrue(vigil.status().unsentReadings > 0uL)
        vigil
    }

    @Test
    fun the_scheduled_request_needs_a_network_and_backs_off_exponentially() {
        val request = SyncWorker.request(15, unmeteredOnly = false)
        val spec = request.workSpec
        assertEquals(NetworkType.CONNECTED, spec.constraints.requiredNetworkType)
        assertTrue(spec.constraints.requiresBatteryNotLow())
        assertEquals(TimeUnit.MINUTES.toMillis(15), spec.intervalDuration)
        assertEquals(BackoffPolicy.EXPONENTIAL, spec.backoffPolicy)
        assertEquals(TimeUnit.MINUTES.toMillis(1), spec.backoffDelayDuration)
        assertEquals(SyncWorker::class.java.name, spec.workerClassName)
        // Wi-Fi only when the app asks; never more often than WorkManager's floor.
        val unmetered = SyncWorker.request(5, unmeteredOnly = true).workSpec
        assertEquals(NetworkType.UNMETERED, unmetered.constraints.requiredNetworkType)
        assertEquals(TimeUnit.MINUTES.toMillis(15), unmetered.intervalDuration)
    }

    @Test
    fun worker_syncs_to_a_real_ingest_service_and_retries_when_it_is_down(): Unit = runBlocking {
        val patient = admin("patient", "add", "Robolectric synthetic patient")
        val token = admin("token", "add", "--patient", patient, "--role", "device")
        val port = freePort()
        app.vigil = collected("http://127.0.0.1:$port", token, patient)
        try {
            // The service is not up yet: a network failure, so retry later.
            val before = app.vigil.status().unsentReadings
            assertEquals(ListenableWorker.Result.retry(), worker(0).doWork())
            assertEquals(before, app.vigil.status().unsentReadings)

            serve(port)
            // Up: the worker's syncNow sends what the policy allows per pass.
            withTimeout(60_000) {
                var attempt = 1
                while (app.vigil.status().unsentReadings > 0uL) {
                    assertEquals(ListenableWorker.Result.success(), worker(attempt++).doWork())
                }
            }
            assertTrue(app.vigil.status().lastSyncMs != null)
        } finally {
            app.vigil.close()
        }
    }

    @Test
    fun worker_fails_without_retry_when_the_token_is_refused(): Unit = runBlocking {
        val patient = admin("patient", "add", "Robolectric synthetic patient")
        val port = freePort()
        serve(port)
        app.vigil = collected("http://127.0.0.1:$port", "vgl_not_a_token_of_this_service", patient)
        try {
            val before = app.vigil.status().unsentReadings
            assertEquals(ListenableWorker.Result.failure(), worker(0).doWork())
            assertEquals(before, app.vigil.status().unsentReadings)
        } finally {
            app.vigil.close()
        }
    }
}
