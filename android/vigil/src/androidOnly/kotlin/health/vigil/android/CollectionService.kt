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
import health.vigil.core.AlertEvent
import health.vigil.core.ReadingEvent
import health.vigil.model.Phase
import java.util.concurrent.ConcurrentHashMap
import kotlin.math.roundToInt
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.launch

/**
 * Keeps the app's process alive while the SDK collects from a connected
 * sensor: Android stops background BLE work otherwise, and a CGM that
 * goes unread loses the alarm path. The SDK itself lives in the app
 * ([VigilProvider]); this service starts it and stops it with itself.
 *
 * Its ongoing notification shows the latest glucose and the alarms now
 * active, updated as the SDK reports them. It is private: the lock screen
 * shows only its public version, which carries no readings.
 */
class CollectionService : Service() {
    /** Outlives the service, so that `stop` completes after onDestroy. */
    private val sdkScope = CoroutineScope(SupervisorJob() + Dispatchers.IO)

    /** Follows readings and alerts for the notification while running. */
    private var watch: Job? = null

    @Volatile private var latest: ReadingEvent? = null

    /** Alerts started and not yet ended, by id. */
    private val active = ConcurrentHashMap<String, AlertEvent>()

    override fun onBind(intent: Intent?): IBinder? = null

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        ServiceCompat.startForeground(
            this,
            NOTIFICATION_ID,
            notification(this, latest, active.values),
            if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q) {
                ServiceInfo.FOREGROUND_SERVICE_TYPE_CONNECTED_DEVICE
            } else {
                0
            },
        )
        val vigil = (application as VigilProvider).vigil
        if (watch == null) {
            watch = sdkScope.launch {
                launch {
                    vigil.readings().collect {
                        if (it.stream == "glucose") {
                            latest = it
                            refresh()
                        }
                    }
                }
                launch {
                    vigil.alerts().collect {
                        if (it.phase == Phase.END) active.remove(it.id) else active[it.id] = it
                        refresh()
                    }
                }
            }
        }
        sdkScope.launch { runCatching { vigil.start() } }
        // Restarted after a kill: the SDK resumes from its buffer.
        return START_STICKY
    }

    override fun onDestroy() {
        watch?.cancel()
        watch = null
        val vigil = (application as VigilProvider).vigil
        sdkScope.launch { runCatching { vigil.stop() } }
        super.onDestroy()
    }

    private fun refresh() {
        getSystemService(NotificationManager::class.java)
            ?.notify(NOTIFICATION_ID, notification(this, latest, active.values))
    }

    /** How the app starts and stops continuous collection. */
    companion object {
        private const val CHANNEL_ID = "vigil.collection"

        /** The foreground notification's id, for apps that style it. */
        const val NOTIFICATION_ID = 0x5161

        /** Starts collecting in the foreground (call from a visible activity). */
        fun start(context: Context) {
            ContextCompat.startForegroundService(context, Intent(context, CollectionService::class.java))
        }

        /** Stops collecting; buffered readings stay for the next sync. */
        fun stop(context: Context) {
            context.stopService(Intent(context, CollectionService::class.java))
        }

        /** What the notification says: the latest glucose, then any active alarm. */
        internal fun text(latest: ReadingEvent?, alarms: Collection<AlertEvent>): String {
            val glucose = latest?.let { "Glucose ${it.value.roundToInt()} ${it.unit}" } ?: "Waiting for the sensor"
            if (alarms.isEmpty()) return glucose
            val names = alarms.sortedBy { it.timeMs }.joinToString { it.kind.name.lowercase().replace('_', ' ') }
            return "$glucose · Alarm: $names"
        }

        private fun notification(context: Context, latest: ReadingEvent?, alarms: Collection<AlertEvent>): Notification {
            val manager = context.getSystemService(NotificationManager::class.java)
            if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.O) {
                manager?.createNotificationChannel(
                    NotificationChannel(CHANNEL_ID, "Sensor connection", NotificationManager.IMPORTANCE_LOW),
                )
            }
            val lockScreen = NotificationCompat.Builder(context, CHANNEL_ID)
                .setContentTitle("Connected to your sensor")
                .setSmallIcon(android.R.drawable.stat_sys_data_bluetooth)
                .build()
            return NotificationCompat.Builder(context, CHANNEL_ID)
                .setContentTitle("Connected to your sensor")
                .setContentText(text(latest, alarms))
                .setSmallIcon(android.R.drawable.stat_sys_data_bluetooth)
                .setOngoing(true)
                .setOnlyAlertOnce(true)
                .setCategory(NotificationCompat.CATEGORY_SERVICE)
                .setVisibility(NotificationCompat.VISIBILITY_PRIVATE)
                .setPublicVersion(lockScreen)
                .build()
        }
    }
}
