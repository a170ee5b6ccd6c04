package health.vigil.android

import android.Manifest
import android.app.Application
import android.app.Notification
import android.app.NotificationManager
import android.bluetooth.BluetoothManager
import android.content.pm.ServiceInfo
import health.vigil.Vigil
import health.vigil.core.DeviceKind
import health.vigil.core.TransportMode
import health.vigil.vigilConfig
import java.io.File
import java.nio.file.Files
import javax.xml.parsers.DocumentBuilderFactory
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.shadow.api.Shadow
import org.robolectric.shadows.ShadowBluetoothDevice

/** The app, as the library expects it: one SDK for its components. */
class TestApp : Application(), VigilProvider {
    override lateinit var vigil: Vigil
}

private const val SENSOR = "66:55:44:33:22:11"

/** The foreground service on Android 14, with the real core collecting from a CGM. */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [34], application = TestApp::class, shadows = [CgmGattShadow::class])
class CollectionServiceTest {
    private lateinit var app: TestApp
    private lateinit var scope: CoroutineScope
    private lateinit var dir: File

    @Before
    fun setUp() {
        app = RuntimeEnvironment.getApplication() as TestApp
        scope = CoroutineScope(SupervisorJob() + Dispatchers.IO)
        shadowOf(app).grantPermissions(Manifest.permission.BLUETOOTH_CONNECT, Manifest.permission.POST_NOTIFICATIONS)
        dir = Files.createTempDirectory("vigil-service").toFile()
        val db = File(dir, "buffer.db").path
        app.vigil = runBlocking { Vigil.open(vigilConfig(db, "patient-1", transport = TransportMode.HOST_FED)) }
    }

    @After
    fun tearDown() {
        scope.cancel()
        app.vigil.close()
        dir.deleteRecursively()
    }

    private fun shownText(): String? {
        val manager = app.getSystemService(NotificationManager::class.java)
        return shadowOf(manager).getNotification(CollectionService.NOTIFICATION_ID)
            ?.extras?.getCharSequence(Notification.EXTRA_TEXT)?.toString()
    }

    @Test
    fun runs_in_the_foreground_as_a_connected_device_service_showing_glucose_and_alarm(): Unit = runBlocking {
        // Readings falling to 42 mg/dL: the latest is an urgent low.
        val cgm = FakeCgm(SENSOR, (1..12).map { i -> i * 5 to 130 - (i - 1) * 8 })
        val device = app.getSystemService(BluetoothManager::class.java).adapter.getRemoteDevice(SENSOR)
        Shadow.extract<ShadowBluetoothDevice>(device).setGattConnectionInterceptor { cgm.accept(it) }
        BleBridge(app, app.vigil, scope).attach()
        app.vigil.pair(SENSOR, DeviceKind.CGM)

        val controller = Robolectric.buildService(CollectionService::class.java).create().startCommand(0, 1)
        val service = controller.get()
        val shadow = shadowOf(service)
        assertEquals(CollectionService.NOTIFICATION_ID, shadow.lastForegroundNotificationId)
        assertEquals(ServiceInfo.FOREGROUND_SERVICE_TYPE_CONNECTED_DEVICE, service.foregroundServiceType)
        val first = shadow.lastForegroundNotification
        assertEquals(Notification.VISIBILITY_PRIVATE, first.visibility)
        val lockScreen = first.publicVersion?.extras?.getCharSequence(Notification.EXTRA_TEXT)
        assertEquals("the lock screen shows no reading", null, lockScreen)

        withTimeout(30_000) { while (app.vigil.status().storedReadings < 12uL) delay(20) }
        // The latest glucose and the urgent-low alarm (a low alarm may show beside it).
        val shown = withTimeoutOrNull(30_000) {
            while (shownText()?.let { it.startsWith("Glucose 42 mg/dL · Alarm:") && "urgent low" in it } != true) delay(20)
        }
        assertTrue("notification text: ${shownText()}", shown != null)
        assertTrue(app.vigil.status().running)

        // stop, then start again: collection resumes in the foreground.
        controller.destroy()
        withTimeout(30_000) { while (app.vigil.status().running) delay(20) }
        val again = Robolectric.buildService(CollectionService::class.java).create().startCommand(0, 2)
        assertEquals(CollectionService.NOTIFICATION_ID, shadowOf(again.get()).lastForegroundNotificationId)
        withTimeout(30_000) { while (!app.vigil.status().running) delay(20) }
        again.destroy()
        withTimeout(30_000) { while (app.vigil.status().running) delay(20) }
    }

    @Test
    fun the_layer_uses_no_permission_its_manifest_lacks() {
        val manifestPath = System.getProperty("vigil.manifest") ?: error("vigil.manifest not set")
        val doc = DocumentBuilderFactory.newInstance().apply { isNamespaceAware = true }
            .newDocumentBuilder().parse(File(manifestPath))
        val ns = "http://schemas.android.com/apk/res/android"
        val uses = doc.getElementsByTagName("uses-permission")
        val declared = (0 until uses.length).map { uses.item(it).attributes.getNamedItemNS(ns, "name").nodeValue }.toSet()
        // Every Manifest.permission the Android sources name.
        val sources = File(manifestPath).parentFile.resolve("../androidOnly/kotlin").normalize()
        val used = sources.walk().filter { it.extension == "kt" }
            .flatMap { Regex("""Manifest\.permission\.([A-Z_]+)""").findAll(it.readText()).map { m -> m.groupValues[1] } }
            .map { "android.permission.$it" }.toSet()
        assertTrue("the sources name permissions", used.contains(Manifest.permission.BLUETOOTH_CONNECT))
        assertEquals("used but not declared", emptySet<String>(), used - declared)
        // What the service and the runtime checks need on API 34.
        val needed = BleBridge.scanPermissions() + BleBridge.connectPermissions() + listOf(
            Manifest.permission.FOREGROUND_SERVICE,
            Manifest.permission.FOREGROUND_SERVICE_CONNECTED_DEVICE,
            Manifest.permission.POST_NOTIFICATIONS,
        )
        assertEquals("needed but not declared", emptySet<String>(), needed.toSet() - declared)
        // The service is declared with the type it starts with.
        val services = doc.getElementsByTagName("service")
        val service = (0 until services.length).map { services.item(it) }
            .single { it.attributes.getNamedItemNS(ns, "name").nodeValue == CollectionService::class.java.name }
        assertEquals("connectedDevice", service.attributes.getNamedItemNS(ns, "foregroundServiceType").nodeValue)
        assertFalse(service.attributes.getNamedItemNS(ns, "exported").nodeValue.toBoolean())
    }
}
