plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "dev.slimport.sample"
    compileSdk = 35

    defaultConfig {
        applicationId = "dev.slimport.sample"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }

    // model files must stay uncompressed so LiteRT / ONNX Runtime can map them
    androidResources {
        noCompress += listOf("tflite", "onnx", "ort")
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
    implementation(project(":core"))
    // LiteRT (formerly TensorFlow Lite); XNNPACK is its default CPU delegate
    implementation("com.google.ai.edge.litert:litert:1.4.0")
    // optional: run onnx-* / ort-mobile-* bundles with ONNX Runtime
    implementation("com.microsoft.onnxruntime:onnxruntime-android:1.22.0")
}
