// The platform-free core: pure Kotlin/JVM, no Android classes, so it is also compiled and tested on
// Linux CI (tests/test_apps.py with Debian's kotlinc). `./gradlew :core:test -PslimportBundle=<bundle>
// -PslimportParity=<parity.json> -PslimportTokenizers=<tokenizers.json>` runs the same JUnit tests here.
plugins {
    id("org.jetbrains.kotlin.jvm")
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    testImplementation("junit:junit:4.13.2")
}

tasks.test {
    (findProperty("slimportBundle") as String?)?.let { systemProperty("slimport.bundle", it) }
    (findProperty("slimportParity") as String?)?.let { systemProperty("slimport.parity", it) }
    (findProperty("slimportTokenizers") as String?)?.let { systemProperty("slimport.tokenizers", it) }
    testLogging { showStandardStreams = true }
}
