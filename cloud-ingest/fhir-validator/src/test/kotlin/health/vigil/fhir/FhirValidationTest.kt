package health.vigil.fhir

import ca.uhn.fhir.context.FhirContext
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport
import ca.uhn.fhir.validation.FhirValidator
import ca.uhn.fhir.validation.ResultSeverityEnum
import ca.uhn.fhir.validation.SingleValidationMessage
import java.io.File
import java.net.HttpURLConnection
import java.net.ServerSocket
import java.net.Socket
import java.net.URI
import java.nio.file.Files
import java.time.Instant
import java.time.temporal.ChronoUnit
import java.util.concurrent.TimeUnit
import kotlin.math.PI
import kotlin.math.exp
import kotlin.math.roundToInt
import kotlin.math.sin
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator
import org.hl7.fhir.r4.model.Bundle
import org.hl7.fhir.r4.model.Observation
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.Timeout

/** Days of CGM the test puts in. */
private const val DAYS = 14

/**
 * Every FHIR answer of a real `vigil-ingest` process, validated by HAPI
 * FHIR's R4 validator.
 *
 * The binary comes from `-Dvigil.ingest` (cloud-ingest/test-fhir-validator.sh
 * builds it); without it the test fails rather than skips. Two weeks of
 * five-minute CGM readings, with lows, highs and a sensor gap, go in through
 * the Nightscout intake (`POST /api/v1/entries` with the patient's API
 * secret), so every member of the summary has a value; a clinician then
 * reads the searchset, the `$cgm-summary` and the Patient, and each answer
 * must validate with no ERROR or FATAL message and no warning outside
 * [allowedWarnings].
 *
 * Validated against base FHIR R4 only: the HL7 CGM IG's package
 * (`hl7.fhir.uv.cgm`) is on neither npm nor Maven Central, and its own
 * registry (packages.fhir.org) is out of reach of the build, so the IG's
 * profiles are not checked here (see [allowedWarnings]).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class FhirValidationTest {
    private val ctx: FhirContext = FhirContext.forR4()
    private lateinit var dir: File
    private lateinit var db: File
    private var server: Process? = null
    private lateinit var base: String
    private var patient = 0L
    private lateinit var clinicianToken: String
    private lateinit var followerToken: String
    private lateinit var from: Instant
    private lateinit var end: Instant
    private var posted = 0

    private val binary: String by lazy {
        val path = System.getProperty("vigil.ingest")
            ?: error("-Dvigil.ingest=<path to vigil-ingest> is not set (cloud-ingest/test-fhir-validator.sh sets it)")
        require(File(path).canExecute()) { "vigil-ingest not found at $path" }
        path
    }

    /**
     * The validator: HAPI's instance validator over a support chain that
     * answers everything that can be answered offline.
     *
     * - DefaultProfileValidationSupport: the R4 core StructureDefinitions,
     *   ValueSets and CodeSystems (hapi-fhir-validation-resources-r4).
     * - CommonCodeSystemsTerminologyService: UCUM (HAPI ships the UCUM
     *   essence, so every unit code *is* checked), languages, MIME types,
     *   countries.
     * - InMemoryTerminologyServerValidationSupport: expands and checks the
     *   core ValueSets (observation-category, bundle-type, …) in memory.
     * - SnapshotGeneratingValidationSupport: snapshots for differential-only
     *   definitions.
     *
     * LOINC cannot be checked offline: it is licensed and large, HAPI does
     * not ship it, and no terminology server is reachable from the build.
     * The chain therefore has no UnknownCodeSystemWarningValidationSupport
     * (which would turn *every* unknown system into a blanket message);
     * the validator's own "code system unknown" warning is allowed below
     * by system, for LOINC and the two other systems no package provides.
     */
    private val validator: FhirValidator by lazy {
        val chain = ValidationSupportChain(
            DefaultProfileValidationSupport(ctx),
            CommonCodeSystemsTerminologyService(ctx),
            InMemoryTerminologyServerValidationSupport(ctx),
            SnapshotGeneratingValidationSupport(ctx),
        )
        val instance = FhirInstanceValidator(chain)
        // The IG's profile named in meta.profile cannot be loaded (see the
        // class comment): report it as a warning, allowed below by URL,
        // rather than an error; everything else is validated against R4.
        instance.isErrorForUnknownProfiles = false
        ctx.newValidator().registerValidatorModule(instance)
    }

    /**
     * Warnings the service's FHIR is allowed to carry, each with its reason.
     * Any other warning fails the test, as does any ERROR or FATAL.
     */
    private data class Allowed(val reason: String, val matches: (SingleValidationMessage) -> Boolean)

    private val allowedWarnings: List<Allowed> = listOf(
        Allowed("LOINC is licensed and large; HAPI ships none of it and no terminology server is reachable offline") {
            it.unknownCodeSystem("http://loinc.org")
        },
        Allowed("the CGM IG's summary code system is in the IG's package, which cannot be fetched (see the class comment)") {
            it.unknownCodeSystem("http://hl7.org/fhir/uv/cgm/CodeSystem/cgm-summary-codes-temporary")
        },
        Allowed("Vigil's own code system for GRI and time in tight range (docs/architecture.md) is not published as a CodeSystem resource") {
            it.unknownCodeSystem("https://example.invalid/vigil/fhir/CodeSystem/cgm-metrics")
        },
        Allowed("the CGM IG's data-point profile is in the IG's package, which cannot be fetched; the resource is still validated against base R4") {
            it.messageId == "Validation_VAL_Profile_Unknown" &&
                it.message.contains("'http://hl7.org/fhir/uv/cgm/StructureDefinition/cgm-sensor-reading-mg-dl'")
        },
        Allowed(
            "best practice dom-6 (narrative): summary Observations carry one; a narrative per five-minute data point " +
                "would grow a 90-day feed by a third and say nothing its value does not; the Patient has no " +
                "demographics to show by design, and the Device only its serial number",
        ) {
            it.messageId == "http://hl7.org/fhir/StructureDefinition/DomainResource#dom-6" &&
                (it.locationString == "Patient" || // the Patient read on its own
                    listOf("/*Observation/g-", "/*Device/", "/*Patient/").any { r -> it.locationString.contains(r) })
        },
        Allowed(
            "best practice 'observations should have a performer' for the summary measures: software computes " +
                "them, and none of R4's performer types (Practitioner, Organization, Patient, ...) is software",
        ) {
            it.messageId == "All_observations_should_have_a_performer" && it.locationString.contains("/*Observation/s-")
        },
    )

    /** The validator's "this code system is unknown, so the code was not checked" for [system]. */
    private fun SingleValidationMessage.unknownCodeSystem(system: String) =
        messageId == "Terminology_PassThrough_TX_Message" &&
            message.startsWith("CodeSystem is unknown and can't be validated: $system for ")

    // ---- the service -------------------------------------------------------

    /** Runs an admin command of the service and returns its last line of output. */
    private fun admin(vararg args: String, env: Map<String, String> = emptyMap()): String {
        val pb = ProcessBuilder(listOf(binary, "--database", db.path) + args)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
        pb.environment().putAll(env)
        val p = pb.start()
        val out = p.inputStream.bufferedReader().readText().trim()
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "vigil-ingest ${args.first()} hung")
        assertEquals(0, p.exitValue(), "vigil-ingest ${args.joinToString(" ")} failed")
        return out.lines().last()
    }

    private fun freePort(): Int = ServerSocket(0).use { it.localPort }

    private fun serve(): Int {
        val port = freePort()
        val log = File(dir, "server.log")
        server = ProcessBuilder(binary, "--database", db.path, "serve", "--listen", "127.0.0.1:$port")
            .redirectOutput(log)
            .redirectErrorStream(true)
            .start()
        val until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        while (System.nanoTime() < until) {
            if (runCatching { Socket("127.0.0.1", port).close() }.isSuccess) return port
            check(server!!.isAlive) { "vigil-ingest serve exited: ${log.readText()}" }
            Thread.sleep(50)
        }
        error("vigil-ingest did not listen on $port")
    }

    private class Reply(val code: Int, val contentType: String?, val body: String)

    private fun request(method: String, url: String, headers: Map<String, String>, body: String? = null): Reply {
        val c = URI(url).toURL().openConnection() as HttpURLConnection
        c.requestMethod = method
        c.connectTimeout = 5_000
        c.readTimeout = 60_000
        headers.forEach { (k, v) -> c.setRequestProperty(k, v) }
        if (body != null) {
            c.doOutput = true
            c.setRequestProperty("Content-Type", "application/json")
            c.outputStream.use { it.write(body.toByteArray()) }
        }
        val code = c.responseCode
        val text = (if (code < 400) c.inputStream else c.errorStream)?.bufferedReader()?.readText() ?: ""
        return Reply(code, c.contentType, text)
    }

    /** A FHIR read as a clinician (or the given token) would make it. */
    private fun fhirGet(path: String, token: String = clinicianToken): String {
        val r = request("GET", "$base$path", mapOf("Authorization" to "Bearer $token", "Accept" to "application/fhir+json"))
        assertEquals(200, r.code, "GET $path: ${r.body.take(2000)}")
        assertTrue(r.contentType?.startsWith("application/fhir+json") == true, "GET $path: Content-Type ${r.contentType}")
        return r.body
    }

    // ---- two weeks of CGM ----------------------------------------------------

    /**
     * Glucose at five-minute step [i] (day i / 288), mg/dL, as a whole
     * number the way CGM uploaders send it. Deterministic: a daily rhythm,
     * three meals whose peaks vary from day to day (some above 250), a
     * night-time low on every third day (below 54) and a milder one on the
     * day after (54-70), and a little sensor noise.
     */
    private fun glucose(i: Int): Int {
        val minute = (i * 5) % 1440
        val day = i / 288
        var v = 125 + 25 * sin(2 * PI * (minute - 600) / 1440.0) + 4 * sin(i * 0.7)
        for ((k, meal) in listOf(420, 750, 1140).withIndex()) {
            val peak = 60 + 25 * ((day * 7 + k * 3) % 5)
            val x = (minute - meal - 75) / 50.0
            v += peak * exp(-x * x)
        }
        val night = (minute - 200) / 45.0
        when (day % 3) {
            0 -> v -= 85 * exp(-night * night)
            1 -> v -= 45 * exp(-night * night)
        }
        return v.coerceIn(40.0, 400.0).roundToInt()
    }

    private val steps = DAYS * 288

    /** Two hours of day 9 the sensor did not report (a warm-up, say). */
    private fun inGap(i: Int): Boolean = i / 288 == 9 && (i % 288) in (13 * 12) until (15 * 12)

    @BeforeAll
    fun startServiceAndPutTwoWeeksIn() {
        dir = Files.createTempDirectory("vigil-fhir-validator").toFile()
        db = File(dir, "ingest.db")
        patient = admin("patient", "add", "FHIR validation synthetic patient").toLong()
        val secret = "fhir-validator-nightscout-secret"
        assertEquals(
            "nightscout secret set",
            admin("nightscout-secret", "$patient", env = mapOf("VIGIL_NIGHTSCOUT_SECRET" to secret)),
        )
        clinicianToken = admin("clinician", "add", "fhir-validator-clinician")
        assertEquals("assigned", admin("clinician", "assign", "fhir-validator-clinician", "$patient"))
        followerToken = admin("token", "add", "--patient", "$patient", "--role", "follower")
        base = "http://127.0.0.1:${serve()}"

        // Two weeks on the five-minute grid, ending an hour ago: the service
        // takes readings up to its own now, never from its future.
        end = Instant.now().truncatedTo(ChronoUnit.HOURS).minus(1, ChronoUnit.HOURS)
        from = end.minus(DAYS.toLong(), ChronoUnit.DAYS)
        val apiSecret = sha1Hex(secret)
        // One upload per day, as an uploader catching up would send them.
        for (day in 0 until DAYS) {
            val entries = (day * 288 until (day + 1) * 288).filterNot(::inGap).map { i ->
                val t = from.plusSeconds(300L * i)
                """{"type":"sgv","sgv":${glucose(i)},"date":${t.toEpochMilli()},"dateString":"$t","direction":"Flat","device":"fhir-validator"}"""
            }
            val r = request("POST", "$base/api/v1/entries", mapOf("api-secret" to apiSecret), entries.joinToString(",", "[", "]"))
            assertEquals(200, r.code, "POST /api/v1/entries day $day: ${r.body}")
            assertTrue(r.body.contains("\"received\":${entries.size}"), "day $day: ${r.body}")
            posted += entries.size
        }
    }

    @AfterAll
    fun stopService() {
        server?.let {
            it.destroy()
            if (!it.waitFor(10, TimeUnit.SECONDS)) it.destroyForcibly()
        }
        if (::dir.isInitialized) dir.deleteRecursively()
    }

    private fun sha1Hex(s: String): String =
        java.security.MessageDigest.getInstance("SHA-1").digest(s.toByteArray()).joinToString("") { "%02x".format(it) }

    // ---- validation ------------------------------------------------------------

    private fun line(m: SingleValidationMessage) = "${m.severity} [${m.messageId}] ${m.locationString}: ${m.message}"

    /**
     * Validates [json] (the raw answer, so nothing a parser would drop goes
     * unchecked) and fails on any ERROR/FATAL or unlisted warning, printing
     * every such message with its severity, location and text; allowed
     * warnings and information are printed as counts per kind with one
     * example each (a two-week searchset carries thousands).
     */
    private fun assertValid(what: String, json: String) {
        val messages = validator.validateWithResult(json).messages
        val bad = messages.filter {
            it.severity == ResultSeverityEnum.ERROR || it.severity == ResultSeverityEnum.FATAL ||
                (it.severity == ResultSeverityEnum.WARNING && allowedWarnings.none { a -> a.matches(it) })
        }
        val rest = messages - bad.toSet()
        println("$what: ${messages.size} validator message(s), ${bad.size} not allowed")
        rest.groupBy { m -> allowedWarnings.firstOrNull { it.matches(m) }?.reason ?: "${m.severity} [${m.messageId}]" }
            .forEach { (kind, ms) -> println("  ${ms.size} x $kind\n      e.g. ${line(ms.first())}") }
        bad.forEach { println("  " + line(it)) }
        assertTrue(
            bad.isEmpty(),
            "$what: ${bad.size} validator message(s) not allowed (every one printed above); by kind:\n" +
                bad.groupBy { it.severity to it.messageId }.entries.joinToString("\n") { (_, ms) -> "${ms.size} x " + line(ms.first()) },
        )
    }

    private fun summaryJson() = fhirGet("/fhir/Patient/$patient/\$cgm-summary?start=$from&end=$end")

    @Test
    fun `the searchset of two weeks of data points validates`() {
        val json = fhirGet("/fhir/Observation?patient=$patient&date=ge$from&date=le$end")
        val bundle = ctx.newJsonParser().parseResource(Bundle::class.java, json)
        assertEquals(Bundle.BundleType.SEARCHSET, bundle.type)
        assertEquals(posted, bundle.total)
        assertEquals(posted, bundle.entry.count { it.resource is Observation })
        assertValid("searchset", json)
    }

    @Test
    fun `the cgm-summary with every member populated validates`() {
        val json = summaryJson()
        val bundle = ctx.newJsonParser().parseResource(Bundle::class.java, json)
        val observations = bundle.entry.mapNotNull { it.resource as? Observation }
        fun coded(code: String) = observations.single { o -> o.code.coding.any { it.code == code } }
        fun value(code: String) = coded(code).valueQuantity.value.toDouble()
        // Mean, GMI, CV, days of wear and sensor active %, by LOINC.
        assertTrue(value("97507-8") in 100.0..200.0, "mean ${value("97507-8")}")
        assertTrue(value("97506-0") in 5.0..9.0, "GMI ${value("97506-0")}")
        assertTrue(value("104638-2") > 20.0, "CV ${value("104638-2")}")
        assertEquals(DAYS.toDouble(), value("104636-6"), 0.5, "days of wear")
        assertTrue(value("104637-4") in 95.0..99.9, "sensor active ${value("104637-4")} (two hours missing)")
        // GRI and time in tight range under Vigil's own code system.
        assertTrue(value("glycemia-risk-index") > 0.0)
        assertTrue(value("time-in-tight-range") in 1.0..99.0)
        // The times-in-ranges panel: all five ranges have time in them.
        val ranges = coded("106793-3").component
        assertEquals(5, ranges.size)
        for (c in ranges) {
            assertTrue(c.valueQuantity.value.toDouble() > 0.0, "no time in ${c.code.codingFirstRep.code}")
        }
        assertValid("\$cgm-summary", json)
        // A follower of the patient reads the same summary.
        assertEquals(
            bundle.entry.size,
            ctx.newJsonParser().parseResource(Bundle::class.java, fhirGet(
                "/fhir/Patient/$patient/\$cgm-summary?start=$from&end=$end", followerToken,
            )).entry.size,
        )
    }

    @Test
    fun `the Patient validates`() {
        assertValid("Patient", fhirGet("/fhir/Patient/$patient"))
    }

    @Test
    fun `the validator catches a summary with a missing status or a unit UCUM does not know`() {
        val bundle = ctx.newJsonParser().parseResource(Bundle::class.java, summaryJson())
        val observations = bundle.entry.mapNotNull { it.resource as? Observation }
        observations.first().status = null
        observations.first { it.hasValueQuantity() }.valueQuantity.code = "percent"
        val messages = validator.validateWithResult(ctx.newJsonParser().encodeResourceToString(bundle)).messages
        val errors = messages.filter { it.severity == ResultSeverityEnum.ERROR || it.severity == ResultSeverityEnum.FATAL }
        errors.forEach { println("negative control: " + line(it)) }
        assertTrue(
            errors.any { it.locationString.contains("Observation") && it.message.contains("status") },
            "a missing Observation.status was not reported:\n" + messages.joinToString("\n") { line(it) },
        )
        assertTrue(
            errors.any { it.message.contains("percent") },
            "the unit code 'percent' was not reported:\n" + messages.joinToString("\n") { line(it) },
        )
    }
}
