package health.vigil.android

import android.bluetooth.BluetoothGatt
import android.bluetooth.BluetoothGattCharacteristic
import android.bluetooth.BluetoothGattDescriptor
import android.bluetooth.BluetoothGattService
import java.time.ZoneOffset
import java.time.ZonedDateTime
import java.util.UUID
import java.util.concurrent.CopyOnWriteArrayList
import org.robolectric.annotation.Implementation
import org.robolectric.annotation.Implements
import org.robolectric.annotation.RealObject
import org.robolectric.shadow.api.Shadow
import org.robolectric.shadows.ShadowBluetoothGatt

/** A 16-bit Bluetooth SIG UUID in its 128-bit form. */
fun sig(short: Int): UUID = UUID.fromString(String.format("0000%04x-0000-1000-8000-00805f9b34fb", short))

/** CRC-16/MCRF4XX, the CGM service's E2E-CRC, appended little-endian. */
fun withE2eCrc(bytes: ByteArray): ByteArray {
    var crc = 0xFFFF
    for (b in bytes) {
        crc = crc xor (b.toInt() and 0xFF)
        repeat(8) { crc = if (crc and 1 == 1) (crc ushr 1) xor 0x8408 else crc ushr 1 }
    }
    return bytes + byteArrayOf((crc and 0xFF).toByte(), (crc ushr 8).toByte())
}

/**
 * A CGM (Continuous Glucose Monitoring service 0x181F) behind Robolectric's
 * BluetoothGatt shadow, speaking the exact GATT bytes of the service with
 * E2E-CRC on: Feature, Status and Session Start Time to read; measurements
 * on 0x2AA7; RACP (0x2A52) writes answered with the stored records and an
 * indication. [records] are (time offset in minutes, mg/dL).
 */
class FakeCgm(val address: String, private val records: List<Pair<Int, Int>>) {
    /** The sensor session began an hour before the last record. */
    private val sessionStart: ZonedDateTime =
        ZonedDateTime.now(ZoneOffset.UTC).withNano(0).minusMinutes(records.maxOf { it.first }.toLong())

    /** Disconnect after this many records of the first RACP report, once. */
    @Volatile var dropAfter: Int? = null

    /** Every RACP request as written, for the test's assertions. */
    val racpWrites = CopyOnWriteArrayList<ByteArray>()

    /** Descriptor values written (CCCDs), by characteristic. */
    val cccdWrites = CopyOnWriteArrayList<Pair<UUID, ByteArray>>()

    /** Connections made, counting reconnects. */
    @Volatile var connections = 0

    fun measurement(offset: Int, mgDl: Int): ByteArray = withE2eCrc(
        byteArrayOf(
            8, 0, (mgDl and 0xFF).toByte(), ((mgDl shr 8) and 0x0F).toByte(),
            (offset and 0xFF).toByte(), (offset shr 8).toByte(),
        ),
    )

    /** The GATT database the sensor exposes. */
    fun service(): BluetoothGattService {
        val service = BluetoothGattService(sig(0x181F), BluetoothGattService.SERVICE_TYPE_PRIMARY)
        fun add(short: Int, props: Int, cccd: Boolean) {
            val c = BluetoothGattCharacteristic(sig(short), props, BluetoothGattCharacteristic.PERMISSION_READ)
            if (cccd) {
                c.addDescriptor(
                    BluetoothGattDescriptor(
                        sig(0x2902),
                        BluetoothGattDescriptor.PERMISSION_READ or BluetoothGattDescriptor.PERMISSION_WRITE,
                    ),
                )
            }
            service.addCharacteristic(c)
        }
        add(0x2AA7, BluetoothGattCharacteristic.PROPERTY_NOTIFY, true)
        add(0x2A52, BluetoothGattCharacteristic.PROPERTY_WRITE or BluetoothGattCharacteristic.PROPERTY_INDICATE, true)
        add(0x2AA8, BluetoothGattCharacteristic.PROPERTY_READ, false)
        add(0x2AA9, BluetoothGattCharacteristic.PROPERTY_READ, false)
        add(0x2AAA, BluetoothGattCharacteristic.PROPERTY_READ, false)
        return service
    }

    /** Attaches this sensor to a new connection and reports it connected. */
    fun accept(gatt: BluetoothGatt) {
        val shadow = Shadow.extract<CgmGattShadow>(gatt)
        shadow.cgm = this
        val service = service()
        shadow.addDiscoverableService(service)
        service.characteristics.forEach { shadow.allowCharacteristicNotification(it) }
        connections++
        shadow.notifyConnection(address)
    }

    fun read(uuid: UUID): ByteArray = when (uuid) {
        // Feature: E2E-CRC supported (bit 12); interstitial fluid, subcutaneous.
        sig(0x2AA8) -> withE2eCrc(byteArrayOf(0x00, 0x10, 0x00, 0x55))
        // Status: time offset of the last record, no status bits.
        sig(0x2AA9) -> {
            val offset = records.maxOf { it.first }
            withE2eCrc(byteArrayOf((offset and 0xFF).toByte(), (offset shr 8).toByte(), 0, 0, 0))
        }
        sig(0x2AAA) -> withE2eCrc(
            byteArrayOf(
                (sessionStart.year and 0xFF).toByte(), (sessionStart.year shr 8).toByte(),
                sessionStart.monthValue.toByte(), sessionStart.dayOfMonth.toByte(), sessionStart.hour.toByte(),
                sessionStart.minute.toByte(), sessionStart.second.toByte(), 0, 0,
            ),
        )
        else -> ByteArray(0)
    }

    /** A RACP request: report the stored records it asks for, then the response code. */
    fun racp(shadow: CgmGattShadow, gatt: BluetoothGatt, value: ByteArray) {
        racpWrites.add(value)
        val callback = shadow.gattCallback
        val service = gatt.getService(sig(0x181F)) ?: return
        val measurement = service.getCharacteristic(sig(0x2AA7))
        val racp = service.getCharacteristic(sig(0x2A52))
        if (value.size < 2 || value[0].toInt() != 0x01) {
            // Op code not supported.
            callback.onCharacteristicChanged(gatt, racp, byteArrayOf(0x06, 0x00, value.firstOrNull() ?: 0, 0x02))
            return
        }
        // Operator 0x01: all records; 0x03: time offset (filter 0x02) at least.
        val from = if (value[1].toInt() == 0x03 && value.size >= 5) {
            (value[3].toInt() and 0xFF) or ((value[4].toInt() and 0xFF) shl 8)
        } else {
            0
        }
        val wanted = records.filter { it.first >= from }
        if (wanted.isEmpty()) {
            callback.onCharacteristicChanged(gatt, racp, byteArrayOf(0x06, 0x00, 0x01, 0x06))
            return
        }
        for ((i, record) in wanted.withIndex()) {
            if (dropAfter == i) {
                dropAfter = null
                // The link drops mid-backfill: no further records, no response.
                shadow.notifyDisconnection(address)
                return
            }
            callback.onCharacteristicChanged(gatt, measurement, measurement(record.first, record.second))
        }
        callback.onCharacteristicChanged(gatt, racp, byteArrayOf(0x06, 0x00, 0x01, 0x01))
    }

    /** A live measurement notified as the sensor takes it. */
    fun notifyLive(gatt: BluetoothGatt, offset: Int, mgDl: Int) {
        val shadow = Shadow.extract<CgmGattShadow>(gatt)
        val c = gatt.getService(sig(0x181F))?.getCharacteristic(sig(0x2AA7)) ?: return
        shadow.gattCallback.onCharacteristicChanged(gatt, c, measurement(offset, mgDl))
    }
}

/**
 * Robolectric's BluetoothGatt shadow, completed with what a peripheral does:
 * reads answer with the sensor's value (API 33+ callback), writes to the
 * RACP reach the sensor, and CCCD writes are recorded.
 */
@Implements(BluetoothGatt::class)
class CgmGattShadow : ShadowBluetoothGatt() {
    @RealObject
    lateinit var real: BluetoothGatt

    @Volatile var cgm: FakeCgm? = null

    @Implementation
    override fun readCharacteristic(c: BluetoothGattCharacteristic): Boolean {
        val sensor = cgm ?: return false
        if (c.properties and BluetoothGattCharacteristic.PROPERTY_READ == 0) return false
        gattCallback.onCharacteristicRead(real, c, sensor.read(c.uuid), BluetoothGatt.GATT_SUCCESS)
        return true
    }

    @Implementation
    override fun writeCharacteristic(c: BluetoothGattCharacteristic, value: ByteArray, writeType: Int): Int {
        val status = super.writeCharacteristic(c, value, writeType)
        if (status == BluetoothGatt.GATT_SUCCESS && c.uuid == sig(0x2A52)) cgm?.racp(this, real, value)
        return status
    }

    @Implementation
    override fun writeDescriptor(descriptor: BluetoothGattDescriptor, value: ByteArray): Int {
        cgm?.cccdWrites?.add(descriptor.characteristic.uuid to value.copyOf())
        return super.writeDescriptor(descriptor, value)
    }
}
