package health.vigil.probe

import android.bluetooth.BluetoothGatt

/**
 * Compiled only by android/test-framework.sh's negative check: BluetoothGatt
 * has discoverServices, not discoverService. The build must reject this,
 * which proves the Android sources are checked against the real framework.
 */
fun discover(gatt: BluetoothGatt): Boolean = gatt.discoverService()
