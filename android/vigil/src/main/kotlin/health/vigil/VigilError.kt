package health.vigil

import health.vigil.core.SdkException

/**
 * What went wrong in the SDK, as an app can act on it. Messages never carry
 * patient data. Every SDK call throws only these (mapped from the generated
 * [SdkException]).
 */
sealed class VigilError(message: String, cause: Throwable? = null) : Exception(message, cause) {
    /** The on-phone buffer failed or is full. */
    class Storage(message: String, cause: Throwable? = null) : VigilError(message, cause)

    /** The server could not be reached or refused the request. */
    class Network(message: String, cause: Throwable? = null) : VigilError(message, cause)

    /** The server refused the token: refresh it. */
    class Auth(message: String, cause: Throwable? = null) : VigilError(message, cause)

    /** An argument or setting is invalid. */
    class InvalidInput(message: String, cause: Throwable? = null) : VigilError(message, cause)

    /** A device or the Bluetooth stack failed. */
    class Device(message: String, cause: Throwable? = null) : VigilError(message, cause)

    /** Not configured for this call (no server, not host-fed), or closed. */
    class NotAvailable(message: String, cause: Throwable? = null) : VigilError(message, cause)

    /**
     * The app has not been granted the runtime [permissions] this call needs
     * (Android 12+: BLUETOOTH_SCAN, BLUETOOTH_CONNECT): ask the user, then retry.
     */
    class PermissionDenied(val permissions: List<String>) :
        VigilError("runtime permissions not granted: ${permissions.joinToString()}")
}

/** The one place generated errors become [VigilError]s. */
internal fun SdkException.toVigilError(): VigilError {
    val m = message ?: "unknown error"
    return when (this) {
        is SdkException.Storage -> VigilError.Storage(m, this)
        is SdkException.Network -> VigilError.Network(m, this)
        is SdkException.Auth -> VigilError.Auth(m, this)
        is SdkException.InvalidInput -> VigilError.InvalidInput(m, this)
        is SdkException.Device -> VigilError.Device(m, this)
        is SdkException.NotAvailable -> VigilError.NotAvailable(m, this)
    }
}
