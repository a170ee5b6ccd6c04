// The Vigil Android library. Build the native libraries and the generated
// Kotlin bindings first with ./build-rust.sh, then `gradle :vigil:assembleRelease`.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "vigil-android"
include(":vigil")
