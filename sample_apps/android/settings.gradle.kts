// Open this folder in Android Studio (Ladybug or newer). Drop a slimport bundle into
// app/src/main/assets/bundle/ (see docs/apps.md) and run the `app` configuration.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "slimport-sample"
include(":core", ":app")
