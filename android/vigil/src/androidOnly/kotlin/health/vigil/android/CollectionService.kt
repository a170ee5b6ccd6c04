package health.vigil.android

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.Service
import android.content.Context
import android.content.Intent
import android.content.pm.ServiceInfo
import android.os.Build
import android.os.IBinder
import androidx.core.app.NotificationCompat
import androidx.core.app.ServiceCompat
import androidx.core.content.ContextCompat
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.launch

/**
 * Keeps the app's process alive while the SDK collects from a connected
 * sensor: Android stops background BLE work otherwise, and a CGM that
 * goes unread loses the alarm path. The SDK itself lives in the app
 * ([VigilProvider]); this service starts it and stops it with itself.
 * The notification shows no readings (PHI stays off the lock screen).
 */
class CollectionService : Service() {
    /** Outlives the service, so that `stop` completes after onDestroy. */
    private val sdkScope = CoroutineScope(SupervisorJob() + Dispatchers.IO)

    override fun onBind(intent: Intent?): IBinder? = null

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        ServiceCompat.startForeground(
            this,
            NOTIFICATION_ID,
            notification(this),
            if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q) {
                ServiceInfo.FOREGROUND_SERVICE_TYPE_CONNECTED_DEVICE
            } else {
                0
            },
        )
        val vigil = (application as VigilProvider).vigil
        sdkScope.launch { runCatching { vigil.start() } }
        // Restarted after a kill: the SDK resumes from its buffer.
        return START_STICKY
    }

    override fun onDestroy() {
        val vigil = (application as VigilProvider).vigil
        sdkScope.launch { runCatching { vigil.stop() } }
        super.onDestroy()
    }

    /** How the app starts and stops continuous collection. */
    companion object {
        private const val CHANNEL_ID = "vigil.collection"
        private const val NOTIFICATION_ID = 0x5161

        /** Starts collecting in the foreground (call from a visible activity). */
        fun start(context: Context) {
            ContextCompat.startForegroundService(context, Intent(context, CollectionService::class.java))
        }

        /** Stops collecting; buffered readings stay for the next sync. */
        fun stop(context: Context) {
            context.stopService(Intent(context, CollectionService::class.java))
        }

        private fun notification(context: Context): Notification {
            val manager = context.getSystemService(NotificationManager::class.java)
            if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.O) {
                manager.createNotificationChannel(
                    NotificationChannel(CHANNEL_ID, "Sensor connection", NotificationManager.IMPORTANCE_LOW),
                )
            }
            return NotificationCompat.Builder(context, CHANNEL_ID)
                .setContentTitle("Connected to your sensor")
                .setSmallIcon(android.R.drawable.stat_sys_data_bluetooth)
                .setOngoing(true)
                .setCategory(NotificationCompat.CATEGORY_SERVICE)
                .build()
        }
    }
}
