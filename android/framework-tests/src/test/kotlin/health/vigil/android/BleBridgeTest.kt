package health.vigil.android

import android.Manifest
import android.app.Application
import android.bluetooth.BluetoothDevice
import android.bluetooth.BluetoothGattDescriptor
import android.bluetooth.BluetoothManager
import android.bluetooth.le.ScanRecord
import android.bluetooth.le.ScanResult
import android.os.ParcelUuid
import health.vigil.Vigil
import health.vigil.VigilError
import health.vigil.core.DeviceKind
import health.vigil.core.TransportMode
import health.vigil.model.AlertKind
import health.vigil.model.Phase
import health.vigil.vigilConfig
import java.io.File
import java.nio.file.Files
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.async
import kotlinx.coroutines.cancel
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.filter
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.shadow.api.Shadow
import org.robolectric.shadows.ShadowBluetoothDevice

private const val ADDRESS = "00:11:22:33:44:55"

/**
 * BleBridge on Android 14's Bluetooth classes (Robolectric shadows) with the
 * real native core behind it: what the bridge does with BluetoothGatt is
 * what the core's host-fed session asked for, and the CGM's GATT bytes
 * come out of the SDK as readings and alerts.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [34], shadows = [CgmGattShadow::class])
class BleBridgeTest {
    private lateinit var app: Application
    private lateinit var scope: CoroutineScope
    private val dirs = mutableListOf<File>()

    @Before
    fun setUp() {
        app = RuntimeEnvironment.getApplication()
        scope = CoroutineScope(SupervisorJob() + Dispatchers.IO)
        shadowOf(app.getSystemService(BluetoothManager::class.java).adapter).setEnabled(true)
    }

    @After
    fun tearDown() {
        scope.cancel()
        dirs.forEach { it.deleteRecursively() }
    }

    private fun grant(vararg permissions: String) = shadowOf(app).grantPermissions(*permissions)

    private fun openVigil(): Vigil = runBlocking {
        val dir = Files.createTempDirectory("vigil-robolectric").toFile().also { dirs += it }
        val db = File(dir, "buffer.db").path
        Vigil.open(vigilConfig(db, "patient-1", transport = TransportMode.HOST_FED))
    }

    /** Every new GATT connection to [ADDRESS] is served by [cgm]. */
    private fun serve(cgm: FakeCgm): BluetoothDevice {
        val device = app.getSystemService(BluetoothManager::class.java).adapter.getRemoteDevice(ADDRESS)
        Shadow.extract<ShadowBluetoothDevice>(device).setGattConnectionInterceptor { gatt -> cgm.accept(gatt) }
        return device
    }

    @Test
    fun scan_finds_a_cgm_advertising_the_cgm_service(): Unit = runBlocking {
        grant(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT)
        val adapter = app.getSystemService(BluetoothManager::class.java).adapter
        val scanner = shadowOf(adapter.bluetoothLeScanner)
        // In range: a blood-pressure cuff (0x1810, not a sensor Vigil reads)
        // and a CGM (0x181F); each advertises flags and its 16-bit service.
        fun advertising(address: String, service: Int) = ScanResult(
            adapter.getRemoteDevice(address), 0x1b, 1, 0, 0xff, 127, -60, 0,
            ScanRecord.parseFromBytes(
                byteArrayOf(2, 0x01, 0x06, 3, 0x03, (service and 0xFF).toByte(), (service shr 8).toByte()),
            ),
            0L,
        )
        val cuff = advertising("AA:BB:CC:DD:EE:01", 0x1810)
        val cgm = advertising(ADDRESS, 0x181F)
        scanner.addScanResult(cuff)
        scanner.addScanResult(cgm)
        openVigil().use { vigil ->
            val results = Channel<ScanResult>(Channel.UNLIMITED)
            val scan = launch(Dispatchers.IO) { BleBridge(app, vigil, scope).scan().collect { results.send(it) } }
            val found = withTimeout(10_000) { results.receive() }
            assertEquals(ADDRESS, found.device.address)
            assertTrue(found.scanRecord?.serviceUuids.orEmpty().contains(ParcelUuid(sig(0x181F))))
            // The scan's own filters pass the CGM and not the cuff.
            val filters = scanner.activeScans.single().scanFilters()
            assertTrue(filters.any { it.matches(cgm) })
            assertTrue(filters.none { it.matches(cuff) })
            scan.cancel()
            scan.join()
            assertTrue("the scan is stopped with its collector", scanner.activeScans.isEmpty())
        }
    }

    @Test
    fun missing_runtime_permissions_are_a_typed_error_not_a_crash(): Unit = runBlocking {
        openVigil().use { vigil ->
            val bridge = BleBridge(app, vigil, scope)
            try {
                bridge.attach()
                fail("attach without BLUETOOTH_CONNECT must fail")
            } catch (e: VigilError.PermissionDenied) {
                assertEquals(listOf(Manifest.permission.BLUETOOTH_CONNECT), e.permissions)
            }
            try {
                bridge.scan().first()
                fail("scan without BLUETOOTH_SCAN must fail")
            } catch (e: VigilError.PermissionDenied) {
                assertEquals(listOf(Manifest.permission.BLUETOOTH_SCAN), e.permissions)
            }
        }
    }

    @Test
    fun cgm_gatt_bytes_with_e2e_crc_become_readings_and_an_urgent_low_alert(): Unit = runBlocking {
        grant(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT)
        // Twelve five-minute records falling from 130 to 42 mg/dL.
        val records = (1..12).map { i -> i * 5 to 130 - (i - 1) * 8 }
        val cgm = FakeCgm(ADDRESS, records)
        val device = serve(cgm)
        openVigil().use { vigil ->
            val readings = async(Dispatchers.IO, start = CoroutineStart.UNDISPATCHED) {
                vigil.readings().filter { it.stream == "glucose" }.take(13).toList()
            }
            val urgentLow = async(Dispatchers.IO, start = CoroutineStart.UNDISPATCHED) {
                vigil.alerts().filter { it.kind == AlertKind.URGENT_LOW && it.phase == Phase.START }.first()
            }
            BleBridge(app, vigil, scope).attach()
            vigil.pair(ADDRESS, DeviceKind.CGM)
            vigil.start()
            withTimeout(30_000) { while (vigil.status().storedReadings < 12uL) delay(20) }

            // Notifications on, indications on the RACP, in the peer's CCCDs.
            val cccds = cgm.cccdWrites.associate { (c, v) -> c to v }
            assertArrayEquals(BluetoothGattDescriptor.ENABLE_NOTIFICATION_VALUE, cccds[sig(0x2AA7)])
            assertArrayEquals(BluetoothGattDescriptor.ENABLE_INDICATION_VALUE, cccds[sig(0x2A52)])
            // The backfill asked for all stored records.
            assertArrayEquals(byteArrayOf(0x01, 0x01), cgm.racpWrites.first())

            // A live measurement after the stored ones.
            val gatt = Shadow.extract<ShadowBluetoothDevice>(device).bluetoothGatts.last()
            cgm.notifyLive(gatt, 65, 40)
            val got = withTimeout(30_000) { readings.await() }
            assertEquals(records.map { it.second.toDouble() } + 40.0, got.map { it.value })
            assertEquals(records.map { it.first.toULong() } + 65uL, got.map { it.sequence })
            val alert = withTimeout(30_000) { urgentLow.await() }
            assertEquals(ADDRESS, alert.device)
            assertTrue("urgent low below 54 mg/dL", (alert.glucoseMgDl ?: 100.0) < 54.0)
            vigil.stop()
        }
    }

    @Test
    fun disconnect_mid_backfill_and_reconnect_lose_nothing(): Unit = runBlocking {
        grant(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT)
        val records = (1..10).map { i -> i * 5 to 100 + i }
        val cgm = FakeCgm(ADDRESS, records).apply { dropAfter = 4 }
        serve(cgm)
        openVigil().use { vigil ->
            val readings = async(Dispatchers.IO, start = CoroutineStart.UNDISPATCHED) {
                vigil.readings().filter { it.stream == "glucose" }.take(10).toList()
            }
            BleBridge(app, vigil, scope).attach()
            vigil.pair(ADDRESS, DeviceKind.CGM)
            vigil.start()
            val got = withTimeout(60_000) { readings.await() }
            assertEquals("every stored record once, in order", records.map { it.first.toULong() }, got.map { it.sequence })
            assertTrue("the sensor was reconnected", cgm.connections >= 2)
            // The cut backfill was asked for again after the reconnect.
            assertTrue("RACP requests: ${cgm.racpWrites.size}", cgm.racpWrites.size >= 2)
            assertEquals(10uL, vigil.status().storedReadings)
            vigil.stop()
        }
    }
}
