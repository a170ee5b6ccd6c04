package health.vigil.android

import android.content.Context
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.NetworkType
import androidx.work.PeriodicWorkRequest
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import java.util.concurrent.TimeUnit
import health.vigil.VigilError

/**
 * Sends buffered readings when the app is not running collection: the
 * SDK's own timer only runs while it is started. WorkManager wakes this
 * worker with a network (unmetered if asked) and a battery that is not low.
 * Inside a server's `Retry-After` the SDK's sync-now sends only alerts and
 * fails with [VigilError.Network], so the worker retries later instead of
 * undoing the server's back-off.
 */
class SyncWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result {
        val vigil = (applicationContext as VigilProvider).vigil
        return try {
            vigil.syncNow()
            Result.success()
        } catch (e: VigilError.Network) {
            Result.retry()
        } catch (e: VigilError) {
            // Auth, storage, configuration: retrying on a timer will not help.
            Result.failure()
        }
    }

    /** Scheduling, once per app start (replacing nothing already queued). */
    companion object {
        private const val NAME = "vigil.sync"

        /** Schedules a periodic sync; WorkManager's floor is 15 minutes. */
        fun schedule(context: Context, everyMinutes: Long = 15, unmeteredOnly: Boolean = false) {
            WorkManager.getInstance(context)
                .enqueueUniquePeriodicWork(NAME, ExistingPeriodicWorkPolicy.KEEP, request(everyMinutes, unmeteredOnly))
        }

        /** The periodic request [schedule] enqueues: a network, a battery not low, backoff on retry. */
        internal fun request(everyMinutes: Long, unmeteredOnly: Boolean): PeriodicWorkRequest {
            val constraints = Constraints.Builder()
                .setRequiredNetworkType(if (unmeteredOnly) NetworkType.UNMETERED else NetworkType.CONNECTED)
                .setRequiresBatteryNotLow(true)
                .build()
            return PeriodicWorkRequestBuilder<SyncWorker>(everyMinutes.coerceAtLeast(15), TimeUnit.MINUTES)
                .setConstraints(constraints)
                .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 1, TimeUnit.MINUTES)
                .build()
        }

        /** Cancels the periodic sync (on sign-out). */
        fun cancel(context: Context) {
            WorkManager.getInstance(context).cancelUniqueWork(NAME)
        }
    }
}
