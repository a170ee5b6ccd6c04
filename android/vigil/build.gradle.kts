// The Vigil Android library: the uniffi-generated bindings, the
// platform-independent Kotlin layer (Flows, suspend functions, sealed
// errors; also compiled and tested on the JVM by ../jvm-tests), and the
// Android-only parts (BLE bridge, foreground service, sync worker).
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "health.vigil"
    compileSdk = 35

    defaultConfig {
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }

    sourceSets["main"].apply {
        // Written by ../build-rust.sh: one libvigil_bindings.so per ABI ...
        jniLibs.srcDir("src/main/jniLibs")
        // ... and the uniffi-generated Kotlin.
        kotlin.srcDir(layout.buildDirectory.dir("generated/source/uniffi/kotlin"))
        // Android-only sources, kept apart so the JVM tests can compile
        // src/main/kotlin without the Android SDK.
        kotlin.srcDir("src/androidOnly/kotlin")
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // uniffi's Kotlin bindings call the native library through JNA; the
    // @aar artifact carries JNA's own per-ABI libjnidispatch.so.
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
    implementation("androidx.core:core-ktx:1.15.0")
    implementation("androidx.work:work-runtime-ktx:2.10.0")
    // Export to the phone's health store (HealthExport.kt), opt-in per type.
    implementation("androidx.health.connect:connect-client:1.1.0")
}
