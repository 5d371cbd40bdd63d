package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.job.JobOptions;
import dev.skipflow.job.local.AnswerCollector;
import dev.skipflow.job.local.EmbeddedKafkaBroker;
import dev.skipflow.job.local.LocalRunner;
import java.net.http.HttpClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Requests the server refuses or cannot run, on a real broker, MiniCluster and model: three requests on which
 * generation throws (the job's test hook {@code --fail-generation-of}, which a request cannot turn on) fail alone
 * into the dead-letter topic with their reason while their batch-mates complete, the job does not restart, and
 * {@code failedRequests} counts them; each limit ({@code --max-completion-tokens}, {@code --max-prompt-tokens},
 * {@code --max-payload-bytes}) gives a dead letter that names itself and its flag.
 */
class RequestFaultsIT {

    @Test
    void aRequestThatBreaksGenerationFailsAloneAndLimitsNameTheirFlags() throws Exception {
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(0, Path.of("target", "it-kafka-" + System.nanoTime()), true)) {
            JobOptions o = StreamingScenario.options(broker.bootstrapServers(), StreamingScenario.suffix());
            o.failGenerationOf = "poison-";
            o.maxCompletionTokens = 24;
            o.maxPromptTokens = 20;
            o.maxPayloadBytes = 1024;
            o.partitions = 1;
            Map<String, String> expectDead = new HashMap<>(); // id -> what the reason must say
            List<byte[]> values = new ArrayList<>();
            List<String> okIds = new ArrayList<>();
            for (int i = 0; i < 40; i++) {
                String id = (i % 13 == 6 ? "poison-" : "ok-") + i;
                values.add(request(id, "Once upon a time, there was a", 8 + i % 9));
                if (id.startsWith("poison-")) {
                    expectDead.put(id, "generation failed on this request: IllegalStateException: injected kernel failure");
                } else {
                    okIds.add(id);
                }
            }
            values.add(request("too-many-tokens", "Once upon a time", 25));
            expectDead.put("too-many-tokens", "--max-completion-tokens");
            values.add(request("too-long-prompt", "The little dog ran to the park and saw a big red ball and a cat "
                    + "and a bird and a tree", 4));
            expectDead.put("too-long-prompt", "--max-prompt-tokens");
            values.add(request("too-big", "x".repeat(1100), 4));
            int web = ChildProcess.freePort();
            try (LocalRunner runner = LocalRunner.start(o, Path.of("target"), 0, 1, web);
                    AnswerCollector answers = runner.answers()) {
                runner.send(values);
                List<AnswerCollector.Answer> got = answers.collect(values.size(), Duration.ofMinutes(3), Duration.ofSeconds(2));
                assertEquals(values.size(), got.size(), "one answer per record");
                Map<String, JsonNode> completions = new HashMap<>();
                List<JsonNode> dead = new ArrayList<>();
                for (AnswerCollector.Answer a : got) {
                    JsonNode v = StreamingScenario.JSON.readTree(a.value());
                    if (a.topic().equals(o.completionsTopic)) {
                        completions.put(v.get("id").asText(), v);
                    } else {
                        dead.add(v);
                    }
                }
                assertEquals(new java.util.TreeSet<>(okIds), new java.util.TreeSet<>(completions.keySet()));
                int matched = 0;
                for (JsonNode d : dead) {
                    String error = d.get("error").asText();
                    System.err.println("RequestFaultsIT dead letter: " + error);
                    assertEquals(o.promptsTopic, d.get("topic").asText(), "dead letters say where the record was");
                    assertTrue(d.get("offset").asLong() >= 0, d.toString());
                    if (error.contains("--max-payload-bytes")) {
                        assertTrue(error.contains("the limit is 1024"), error);
                        matched++;
                        continue;
                    }
                    String id = StreamingScenario.JSON.readTree(d.get("payload").asText()).get("id").asText();
                    assertTrue(expectDead.containsKey(id), "unexpected dead letter " + d);
                    assertTrue(error.contains(expectDead.get(id)), error + " should mention " + expectDead.get(id));
                    matched++;
                }
                assertEquals(expectDead.size() + 1, matched);
                String jobId = runner.job().getJobID().toString();
                HttpClient http = HttpClient.newHttpClient();
                String base = "http://127.0.0.1:" + web;
                assertEquals(3, sumMetric(http, base, jobId, "generate", "generate.skipflow.failedRequests"),
                        "failedRequests counts the three");
                JsonNode restarts = RequestFaultsIT.jobMetric(http, base, jobId, "numRestarts");
                assertEquals(0, restarts.get(0).get("value").asLong(), "the job did not restart: " + restarts);
            }
        }
    }

    static byte[] request(String id, String prompt, int maxTokens) {
        ObjectNode r = StreamingScenario.JSON.createObjectNode();
        r.put("id", id);
        r.put("prompt", prompt);
        r.put("maxTokens", maxTokens);
        return r.toString().getBytes(StandardCharsets.UTF_8);
    }

    /** A job-level metric (JobManager side), waiting for the REST API's metric fetcher to have it. */
    static JsonNode jobMetric(HttpClient http, String base, String jobId, String metric) throws Exception {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (true) {
            JsonNode m = EndToEndIT.get(http, base + "/jobs/" + jobId + "/metrics?get=" + metric);
            if (m.size() > 0 || System.nanoTime() > deadline) {
                return m;
            }
            Thread.sleep(500);
        }
    }

    static long sumMetric(HttpClient http, String base, String jobId, String vertexName, String metric) throws Exception {
        JsonNode job = EndToEndIT.get(http, base + "/jobs/" + jobId);
        for (JsonNode v : job.get("vertices")) {
            if (v.get("name").asText().contains(vertexName)) {
                // the REST API serves what its metric fetcher last fetched (every 10 s): wait for the metric
                long deadline = System.nanoTime() + 30_000_000_000L;
                while (true) {
                    JsonNode m = EndToEndIT.get(http, base + "/jobs/" + jobId + "/vertices/" + v.get("id").asText()
                            + "/subtasks/metrics?get=" + metric + "&agg=sum");
                    if (m.size() > 0 || System.nanoTime() > deadline) {
                        return m.get(0).get("sum").asLong();
                    }
                    Thread.sleep(500);
                }
            }
        }
        throw new AssertionError("no vertex " + vertexName);
    }
}
