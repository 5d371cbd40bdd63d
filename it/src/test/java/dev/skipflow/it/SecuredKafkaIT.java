package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.skipflow.job.Topics;
import dev.skipflow.job.local.AnswerCollector;
import dev.skipflow.job.local.EmbeddedKafkaBroker;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * The job against a broker that wants SASL (SASL_PLAINTEXT, PLAIN): with the right credentials in a
 * {@code --kafka-config} file it answers end to end, exactly once; with a wrong password it stops at start-up with an
 * authentication error instead of retrying. The password appears nowhere in the job's output (Kafka's and Flink's
 * INFO logs included), nor in what the REST API / web UI shows of the job's configuration, plan or metrics.
 */
class SecuredKafkaIT {

    @Test
    void rightCredentialsWorkEndToEndWrongOnesStopAtStartAndSecretsStayHidden() throws Exception {
        String password = "pw-" + UUID.randomUUID();
        String wrong = "wrong-" + UUID.randomUUID();
        String suffix = StreamingScenario.suffix();
        Path work = Path.of("target", "it-sasl", suffix).toAbsolutePath();
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(0, work.resolve("kafka"), true,
                Map.of("skipflow", password))) {
            Topics.create(broker.bootstrapServers(), 2, "prompts-" + suffix, "completions-" + suffix,
                    "prompts.dlq-" + suffix, "metrics-" + suffix);
            Path right = clientConfig(work.resolve("right.properties"), password);
            Path bad = clientConfig(work.resolve("wrong.properties"), wrong);
            List<String> jvm = List.of("-Xmx768m", "-Dskipflow.child.kafka.level=INFO", "-Dskipflow.child.flink.level=INFO");

            // a wrong password: the job says so and exits, it does not retry
            List<String> args = ChildProcess.jobArgs(broker.saslBootstrapServers(), suffix);
            args.addAll(List.of("--kafka-config", bad.toString(), "--web-ui-port", String.valueOf(ChildProcess.freePort())));
            try (ChildProcess refused = ChildProcess.start("job-wrong-password", work, jvm, ChildProcess.array(args))) {
                Integer code = refused.awaitExit(Duration.ofSeconds(90));
                assertNotNull(code, "the job with a wrong password should stop by itself; it ends:\n" + refused.tail(20));
                assertEquals(2, code, refused.tail(20));
                String out = refused.output();
                assertTrue(out.contains("refused to authenticate the job"), refused.tail(20));
                assertTrue(out.contains("Authentication failed"), refused.tail(20));
                assertFalse(out.contains(wrong), "the wrong password is printed");
                System.err.println("SecuredKafkaIT wrong password: exit " + code + ": "
                        + out.lines().filter(l -> l.contains("refused")).findFirst().orElse(""));
            }

            // the right one: end to end, exactly once
            StreamingScenario scenario = new StreamingScenario(60);
            int web = ChildProcess.freePort();
            args = ChildProcess.jobArgs(broker.saslBootstrapServers(), suffix);
            args.addAll(List.of("--kafka-config", right.toString(), "--kafka-property", "client.id=skipflow-sasl-it",
                    "--web-ui-port", String.valueOf(web)));
            try (ChildProcess job = ProcessFaultsIT.startJob("job-sasl", work, jvm, args);
                    JobStats stats = new JobStats(web);
                    AnswerCollector reader = new AnswerCollector(broker.bootstrapServers(), "completions-" + suffix,
                            "prompts.dlq-" + suffix)) {
                scenario.send(broker.bootstrapServers(), "prompts-" + suffix);
                List<AnswerCollector.Answer> answers = reader.collect(scenario.expected(), Duration.ofMinutes(3),
                        Duration.ofSeconds(3));
                StreamingScenario.Tally t = scenario.verify(answers, "prompts-" + suffix, "completions-" + suffix,
                        "prompts.dlq-" + suffix, null);
                System.err.printf("SecuredKafkaIT: SASL_PLAINTEXT/PLAIN, %d records in, %d completions and %d dead letters "
                        + "out, exactly once; %s%n", t.records(), t.completions(), t.deadLetters(), stats.describe(answers));
                String shown = restPages(web);
                assertFalse(shown.contains(password), "the password is shown by the REST API / web UI");
                String out = job.output();
                assertTrue(out.contains("sasl.jaas.config = [hidden]"), "Kafka's config dump is in the log (INFO)");
                assertTrue(out.contains("sasl.jaas.config=[hidden]"), "the job's own summary masks it");
                assertFalse(out.contains(password), "the password is in the job's output");
            }
        }
    }

    static Path clientConfig(Path file, String password) throws Exception {
        Files.createDirectories(file.getParent());
        Files.writeString(file, String.join("\n", "security.protocol=SASL_PLAINTEXT", "sasl.mechanism=PLAIN",
                "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"skipflow\" "
                        + "password=\"" + password + "\";", ""), StandardCharsets.UTF_8);
        return file;
    }

    /** Everything the web UI reads about the job: overview, details, configs, plan, checkpoints, metric names and values. */
    static String restPages(int port) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        String base = "http://127.0.0.1:" + port;
        StringBuilder all = new StringBuilder();
        JsonNode overview = StreamingScenario.JSON.readTree(get(http, base + "/jobs/overview"));
        String jobId = overview.get("jobs").get(0).get("jid").asText();
        List<String> pages = new ArrayList<>(List.of("/jobs/overview", "/config", "/jobmanager/config",
                "/jobs/" + jobId, "/jobs/" + jobId + "/config", "/jobs/" + jobId + "/jobmanager/config",
                "/jobs/" + jobId + "/plan", "/jobs/" + jobId + "/checkpoints/config", "/taskmanagers"));
        JsonNode job = StreamingScenario.JSON.readTree(get(http, base + "/jobs/" + jobId));
        for (JsonNode v : job.get("vertices")) {
            pages.add("/jobs/" + jobId + "/vertices/" + v.get("id").asText() + "/metrics");
        }
        for (String p : pages) {
            all.append(get(http, base + p)).append('\n');
        }
        // metric values too (the Kafka clients' metrics are registered under their client ids)
        for (JsonNode v : job.get("vertices")) {
            String vertex = v.get("id").asText();
            JsonNode names = StreamingScenario.JSON.readTree(get(http, base + "/jobs/" + jobId + "/vertices/" + vertex + "/metrics"));
            List<String> ids = new ArrayList<>();
            names.forEach(n -> ids.add(n.get("id").asText()));
            for (int i = 0; i < ids.size(); i += 40) {
                String q = String.join(",", ids.subList(i, Math.min(ids.size(), i + 40)));
                all.append(get(http, base + "/jobs/" + jobId + "/vertices/" + vertex + "/metrics?get="
                        + java.net.URLEncoder.encode(q, StandardCharsets.UTF_8))).append('\n');
            }
        }
        return all.toString();
    }

    static String get(HttpClient http, String url) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
        return r.body();
    }
}
