package health.vigil.android

import health.vigil.Vigil

/**
 * Implemented by the app's `Application`: the one SDK instance that the
 * collection service and the sync worker use. Android creates those
 * components itself, so they cannot be handed the SDK in a constructor.
 */
interface VigilProvider {
    /** The app's SDK, configured with the host-fed transport for real sensors. */
    val vigil: Vigil
}
