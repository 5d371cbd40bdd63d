package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.skipflow.job.JobOptions;
import dev.skipflow.job.local.EmbeddedKafkaBroker;
import dev.skipflow.job.local.LocalRunner;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** 200 records through the embedded KRaft broker and a MiniCluster running the real model, two slots. */
class EndToEndIT {

    static EmbeddedKafkaBroker broker;

    @BeforeAll
    static void startBroker() throws Exception {
        broker = EmbeddedKafkaBroker.start(0, Path.of("target", "it-kafka-" + System.nanoTime()), true);
    }

    @AfterAll
    static void stopBroker() {
        if (broker != null) {
            broker.close();
        }
    }

    @Test
    void everyRecordIsAnsweredExactlyOnceAndMetricsAreVisible() throws Exception {
        StreamingScenario scenario = new StreamingScenario(180);
        JobOptions o = StreamingScenario.options(broker.bootstrapServers(), StreamingScenario.suffix());
        o.parallelism = 2;
        int webUi;
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            webUi = s.getLocalPort();
        }
        try (LocalRunner runner = LocalRunner.start(o, Path.of("target"), 0, 2, webUi)) {
            scenario.send(broker.bootstrapServers(), o.promptsTopic);
            List<JsonNode> completions = scenario.collectAndVerify(runner, Duration.ofMinutes(4));
            scenario.verifyGreedyMatchesGenerateCli(completions, 8);
            StreamingScenario.verifyMetricsTopic(broker.bootstrapServers(), o.metricsTopic, 180);
            verifyRestMetrics(webUi, runner.job().getJobID().toString());
        }
    }

    /** The job's Flink metrics are readable through the REST API the web UI uses. */
    static void verifyRestMetrics(int port, String jobId) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        String base = "http://127.0.0.1:" + port;
        JsonNode job = get(http, base + "/jobs/" + jobId);
        java.util.Map<String, String> idToVertex = new java.util.HashMap<>();
        String generate = null;
        for (JsonNode v : job.get("vertices")) {
            String vertex = v.get("id").asText();
            if (v.get("name").asText().contains("generate")) {
                generate = vertex;
            }
            for (JsonNode m : get(http, base + "/jobs/" + jobId + "/vertices/" + vertex + "/metrics")) {
                idToVertex.put(m.get("id").asText(), vertex);
            }
        }
        assertTrue(generate != null, "no vertex named generate in " + job);
        List<String> names = List.of("skipflow.requests", "skipflow.completionTokens", "skipflow.tokensPerSecond",
                "skipflow.batchSize", "skipflow.queueDepth", "skipflow.latencyMs_p99", "skipflow.timeToFirstTokenMs_median",
                "skipflow.savedFraction", "skipflow.deadLetters", "skipflow.records");
        // the REST API serves what its metric fetcher last fetched, vertex by vertex; the first request only starts a
        // fetch, so wait until every vertex's names are in (one vertex's can come before another's)
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!names.stream().allMatch(n -> idToVertex.keySet().stream().anyMatch(id -> id.endsWith(n)))
                && System.nanoTime() < deadline) {
            Thread.sleep(500);
            for (JsonNode v : job.get("vertices")) {
                for (JsonNode m : get(http, base + "/jobs/" + jobId + "/vertices/" + v.get("id").asText() + "/metrics")) {
                    idToVertex.put(m.get("id").asText(), v.get("id").asText());
                }
            }
        }
        for (String name : names) {
            assertTrue(idToVertex.keySet().stream().anyMatch(id -> id.endsWith(name)), name + " is not among the job's metrics");
        }
        String requestsId = idToVertex.keySet().stream().filter(id -> id.endsWith("generate.skipflow.requests"))
                .findFirst().orElseThrow();
        JsonNode value = get(http, base + "/jobs/" + jobId + "/vertices/" + generate + "/metrics?get=" + requestsId);
        assertTrue(value.get(0).get("value").asLong() > 0, "requests counter: " + value);
    }

    static JsonNode get(HttpClient http, String url) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertTrue(r.statusCode() == 200, url + " -> " + r.statusCode() + " " + r.body());
        return StreamingScenario.JSON.readTree(r.body());
    }
}
