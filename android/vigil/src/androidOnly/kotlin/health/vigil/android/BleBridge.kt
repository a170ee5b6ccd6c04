package health.vigil.android

import android.Manifest
import android.annotation.SuppressLint
import android.bluetooth.BluetoothDevice
import android.bluetooth.BluetoothGatt
import android.bluetooth.BluetoothGattCallback
import android.bluetooth.BluetoothGattCharacteristic
import android.bluetooth.BluetoothGattDescriptor
import android.bluetooth.BluetoothManager
import android.bluetooth.BluetoothProfile
import android.bluetooth.le.ScanCallback
import android.bluetooth.le.ScanFilter
import android.bluetooth.le.ScanResult
import android.bluetooth.le.ScanSettings
import android.content.Context
import android.content.pm.PackageManager
import android.os.Build
import android.os.ParcelUuid
import health.vigil.Vigil
import health.vigil.VigilError
import health.vigil.core.HostCharacteristic
import health.vigil.core.HostReply
import health.vigil.core.HostRequest
import java.util.UUID
import java.util.concurrent.ConcurrentHashMap
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.launch

/**
 * Runs the core's host-fed transport over Android's own Bluetooth stack.
 *
 * The core decides what to do (connect, discover, subscribe, RACP writes
 * for backfill) and sends [HostRequest]s on [Vigil.hostRequests]; [attach]
 * collects them, performs each on [BluetoothGatt] and answers with
 * [Vigil.completeHostRequest]. Every notified or indicated value goes to
 * [Vigil.feedHostBytes] untouched: decoding stays in the core. Calls into
 * the SDK leave the Binder thread through one queue, so values reach the
 * core in the order the sensor sent them. Device ids are Bluetooth addresses.
 *
 * Android runs one GATT operation at a time per connection; the core
 * awaits each answer before its next request, so one pending token per
 * device is enough.
 *
 * From Android 12 (API 31) scanning needs BLUETOOTH_SCAN and every GATT call
 * BLUETOOTH_CONNECT, granted at run time. The bridge checks them before it
 * touches the stack: [attach] and [scan] fail with
 * [VigilError.PermissionDenied] naming what is missing, and a request from
 * the core that arrives after a grant was revoked is answered as failed,
 * never with the framework's SecurityException.
 */
@SuppressLint("MissingPermission")
class BleBridge(context: Context, private val vigil: Vigil, private val scope: CoroutineScope) {
    private val appContext = context.applicationContext
    private val manager = appContext.getSystemService(BluetoothManager::class.java)
    private val gatts = ConcurrentHashMap<String, BluetoothGatt>()
    private val pending = ConcurrentHashMap<String, ULong>()

    /** Calls into the SDK, in order, off the Binder threads GATT calls back on. */
    private val calls = Channel<suspend () -> Unit>(Channel.UNLIMITED)

    /**
     * Starts serving the core's requests; cancel the job (or [scope]) to stop.
     * Throws [VigilError.PermissionDenied] without BLUETOOTH_CONNECT (API 31+).
     */
    fun attach(): Job {
        missing(connectPermissions()).takeIf { it.isNotEmpty() }?.let { throw VigilError.PermissionDenied(it) }
        return serve()
    }

    private fun serve(): Job = scope.launch {
        launch { for (call in calls) runCatching { call() } }
        vigil.hostRequests().collect { handle(it) }
    }

    private fun sdk(call: suspend () -> Unit) {
        calls.trySend(call)
    }

    /** Performs one request from the core; the answer goes back asynchronously. */
    private fun handle(request: HostRequest) {
        val device = request.device
        val denied = missing(connectPermissions())
        if (denied.isNotEmpty() && request.command !in setOf("start_scan", "stop_scan")) {
            return fail(request, "not granted: ${denied.joinToString()}")
        }
        val uuid = request.characteristic?.let(UUID::fromString)
        when (request.command) {
            // Devices are paired by address; scanning for new ones is [scan].
            "start_scan", "stop_scan" -> reply(request.token, HostReply.Done)
            "connect" -> connect(request.token, device ?: return fail(request, "no device"))
            "disconnect" -> {
                gatts.remove(device)?.let { it.disconnect(); it.close() }
                reply(request.token, HostReply.Done)
            }
            "discover" -> withGatt(request) { gatt ->
                if (!gatt.discoverServices()) fail(request, "discoverServices refused")
            }
            "read" -> withCharacteristic(request, uuid) { gatt, c ->
                if (!gatt.readCharacteristic(c)) fail(request, "read refused")
            }
            "write" -> withCharacteristic(request, uuid) { gatt, c -> write(gatt, c, request) }
            "subscribe" -> withCharacteristic(request, uuid) { gatt, c -> setNotify(gatt, c, request, true) }
            "unsubscribe" -> withCharacteristic(request, uuid) { gatt, c -> setNotify(gatt, c, request, false) }
            else -> fail(request, "unsupported command")
        }
    }

    /**
     * Scans for the sensor services Vigil reads, for the app's pairing screen.
     * The flow fails with [VigilError.PermissionDenied] without BLUETOOTH_SCAN
     * (API 31+; location below it).
     */
    fun scan(): Flow<ScanResult> = callbackFlow {
        val denied = missing(scanPermissions())
        if (denied.isNotEmpty()) {
            close(VigilError.PermissionDenied(denied))
            return@callbackFlow
        }
        val scanner = manager.adapter?.bluetoothLeScanner
        if (scanner == null) {
            close(IllegalStateException("Bluetooth is off or absent"))
            return@callbackFlow
        }
        val callback = object : ScanCallback() {
            override fun onScanResult(callbackType: Int, result: ScanResult) {
                trySend(result)
            }

            override fun onScanFailed(errorCode: Int) {
                close(IllegalStateException("scan failed: $errorCode"))
            }
        }
        val filters = SENSOR_SERVICES.map { ScanFilter.Builder().setServiceUuid(ParcelUuid(it)).build() }
        val settings = ScanSettings.Builder().setScanMode(ScanSettings.SCAN_MODE_LOW_LATENCY).build()
        scanner.startScan(filters, settings, callback)
        awaitClose { scanner.stopScan(callback) }
    }

    /** Closes every connection; call when the SDK stops. */
    fun close() {
        calls.close()
        gatts.values.forEach { it.disconnect(); it.close() }
        gatts.clear()
        pending.clear()
    }

    private fun connect(token: ULong, address: String) {
        val adapter = manager.adapter ?: return reply(token, HostReply.Failed("Bluetooth is off or absent"))
        val remote: BluetoothDevice = adapter.getRemoteDevice(address)
        pending[address] = token
        gatts.remove(address)?.close()
        gatts[address] = remote.connectGatt(appContext, false, callback, BluetoothDevice.TRANSPORT_LE)
    }

    private fun write(gatt: BluetoothGatt, c: BluetoothGattCharacteristic, request: HostRequest) {
        // Control points (RACP, CGM Specific Ops) need a write with response.
        val type = if (c.properties and BluetoothGattCharacteristic.PROPERTY_WRITE != 0) {
            BluetoothGattCharacteristic.WRITE_TYPE_DEFAULT
        } else {
            BluetoothGattCharacteristic.WRITE_TYPE_NO_RESPONSE
        }
        val started = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            gatt.writeCharacteristic(c, request.value, type) == BluetoothGatt.GATT_SUCCESS
        } else {
            @Suppress("DEPRECATION")
            run { c.writeType = type; c.value = request.value; gatt.writeCharacteristic(c) }
        }
        if (!started) fail(request, "write refused")
    }

    /** Enables notifications or indications: locally, then in the peer's CCCD. */
    private fun setNotify(gatt: BluetoothGatt, c: BluetoothGattCharacteristic, request: HostRequest, on: Boolean) {
        val cccd = c.getDescriptor(CCCD) ?: return fail(request, "no CCCD")
        val value = when {
            !on -> BluetoothGattDescriptor.DISABLE_NOTIFICATION_VALUE
            c.properties and BluetoothGattCharacteristic.PROPERTY_INDICATE != 0 ->
                BluetoothGattDescriptor.ENABLE_INDICATION_VALUE
            else -> BluetoothGattDescriptor.ENABLE_NOTIFICATION_VALUE
        }
        if (!gatt.setCharacteristicNotification(c, on)) return fail(request, "notification refused")
        val started = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            gatt.writeDescriptor(cccd, value) == BluetoothGatt.GATT_SUCCESS
        } else {
            @Suppress("DEPRECATION")
            run { cccd.value = value; gatt.writeDescriptor(cccd) }
        }
        if (!started) fail(request, "CCCD write refused")
    }

    private inline fun withGatt(request: HostRequest, action: (BluetoothGatt) -> Unit) {
        val address = request.device ?: return fail(request, "no device")
        val gatt = gatts[address] ?: return fail(request, "not connected")
        pending[address] = request.token
        action(gatt)
    }

    private inline fun withCharacteristic(
        request: HostRequest,
        uuid: UUID?,
        action: (BluetoothGatt, BluetoothGattCharacteristic) -> Unit,
    ) {
        withGatt(request) { gatt ->
            val c = gatt.services.firstNotNullOfOrNull { it.getCharacteristic(uuid) }
                ?: return fail(request, "no such characteristic")
            action(gatt, c)
        }
    }

    private fun answer(address: String, reply: HostReply) {
        pending.remove(address)?.let { reply(it, reply) }
    }

    private fun reply(token: ULong, reply: HostReply) {
        sdk { vigil.completeHostRequest(token, reply) }
    }

    private fun fail(request: HostRequest, why: String) {
        request.device?.let { pending.remove(it) }
        reply(request.token, HostReply.Failed(why))
    }

    private fun answerGatt(address: String, status: Int, ok: () -> HostReply) =
        answer(address, if (status == BluetoothGatt.GATT_SUCCESS) ok() else HostReply.Failed("GATT status $status"))

    private val callback = object : BluetoothGattCallback() {
        override fun onConnectionStateChange(gatt: BluetoothGatt, status: Int, newState: Int) {
            val address = gatt.device.address
            val up = status == BluetoothGatt.GATT_SUCCESS && newState == BluetoothProfile.STATE_CONNECTED
            // The stack may report the link before connectGatt has returned.
            if (up) gatts.putIfAbsent(address, gatt)
            sdk { vigil.hostConnection(address, up) }
            if (up) {
                answer(address, HostReply.Done)
            } else if (newState == BluetoothProfile.STATE_DISCONNECTED) {
                answer(address, HostReply.Failed("disconnected, GATT status $status"))
                gatts.remove(address)?.close()
            }
        }

        override fun onServicesDiscovered(gatt: BluetoothGatt, status: Int) =
            answerGatt(gatt.device.address, status) {
                HostReply.Characteristics(
                    gatt.services.flatMap { s ->
                        s.characteristics.map { c ->
                            HostCharacteristic(s.uuid.toString(), c.uuid.toString(), c.properties.toUByte())
                        }
                    },
                )
            }

        override fun onCharacteristicRead(gatt: BluetoothGatt, c: BluetoothGattCharacteristic, value: ByteArray, status: Int) =
            answerGatt(gatt.device.address, status) { HostReply.Value(value) }

        // Android calls this form only before API 33; the value form above replaces it.
        @Suppress("DEPRECATION", "OVERRIDE_DEPRECATION")
        override fun onCharacteristicRead(gatt: BluetoothGatt, c: BluetoothGattCharacteristic, status: Int) {
            if (Build.VERSION.SDK_INT < Build.VERSION_CODES.TIRAMISU) {
                answerGatt(gatt.device.address, status) { HostReply.Value(c.value ?: ByteArray(0)) }
            }
        }

        override fun onCharacteristicWrite(gatt: BluetoothGatt, c: BluetoothGattCharacteristic, status: Int) =
            answerGatt(gatt.device.address, status) { HostReply.Done }

        override fun onDescriptorWrite(gatt: BluetoothGatt, d: BluetoothGattDescriptor, status: Int) =
            answerGatt(gatt.device.address, status) { HostReply.Done }

        override fun onCharacteristicChanged(gatt: BluetoothGatt, c: BluetoothGattCharacteristic, value: ByteArray) {
            feed(gatt, c, value)
        }

        // Android calls this form only before API 33; the value form above replaces it.
        @Suppress("DEPRECATION", "OVERRIDE_DEPRECATION")
        override fun onCharacteristicChanged(gatt: BluetoothGatt, c: BluetoothGattCharacteristic) {
            if (Build.VERSION.SDK_INT < Build.VERSION_CODES.TIRAMISU) feed(gatt, c, c.value ?: return)
        }
    }

    /** Notified and indicated bytes go to the core as they are. */
    private fun feed(gatt: BluetoothGatt, c: BluetoothGattCharacteristic, value: ByteArray) {
        val address = gatt.device.address
        val uuid = c.uuid.toString()
        sdk { vigil.feedHostBytes(address, uuid, value) }
    }

    private fun missing(permissions: List<String>): List<String> = permissions.filter {
        appContext.checkSelfPermission(it) != PackageManager.PERMISSION_GRANTED
    }

    /** The runtime permissions that scanning and connecting need, for the app's request. */
    companion object {
        /** What [scan] needs on this Android version. */
        fun scanPermissions(): List<String> = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) {
            listOf(Manifest.permission.BLUETOOTH_SCAN)
        } else {
            listOf(Manifest.permission.ACCESS_FINE_LOCATION)
        }

        /** What [attach] and every GATT operation need on this Android version. */
        fun connectPermissions(): List<String> = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) {
            listOf(Manifest.permission.BLUETOOTH_CONNECT)
        } else {
            emptyList()
        }

        private val CCCD: UUID = UUID.fromString("00002902-0000-1000-8000-00805f9b34fb")
        private val SENSOR_SERVICES: List<UUID> = listOf("181f", "1808", "180d", "1822").map {
            UUID.fromString("0000$it-0000-1000-8000-00805f9b34fb")
        }
    }
}
