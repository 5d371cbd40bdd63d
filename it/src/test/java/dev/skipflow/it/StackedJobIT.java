package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.skipflow.job.cli.SkipflowCli;
import dev.skipflow.job.local.AnswerCollector;
import dev.skipflow.model.io.CompressedCheckpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A serving bundle built by {@code ./skipflow stack} through Kafka: stories260K pruned, then made low rank, with a
 * router and an exit classifier trained on the compressed model, which the job serves from the bundle without being
 * told. Every completion's {@code savings.byMethod} sums to its {@code savedFraction}, adaptive requests save by all
 * three methods, dense ones by compression only; the metrics topic carries the same split. A stack whose second
 * step fails leaves nothing behind.
 */
class StackedJobIT {

    @Test
    void aStackedBundleWithItsRouterAndExitSavesByEachMethodAndTheSharesSumToTheWhole() throws Exception {
        Path root = Path.of("target", "it-stack-" + System.nanoTime());
        Path bundle = root.resolve("bundle");
        String original = StreamingScenario.shared().resolve("models/stories260K/stories260K.bin").toString();
        List<String> stack = List.of("stack", "--model", original, "--device", "cpu", "--steps", "prune:0.3,lowrank:0.8",
                "--prune-args", "--samples 3 --recover-steps 2 --recover-batch 1 --recover-max-len 32",
                "--lowrank-args", "--steps 3 --samples 4 --crossover params",
                "--router", "0.3", "--router-args", "--steps 5 --docs 16 --docs-per-step 2 --search-docs 4 "
                        + "--search-max-len 64 --generations 0 --oracle-docs 4 --max-len 32",
                "--exit", "--exit-args", "--docs 40 --max-len 64 --target-agreement 0.9 --min-layer 2 --every 1",
                "--out", bundle.toString());

        List<String> failing = new ArrayList<>(stack);
        failing.set(failing.indexOf("--steps 3 --samples 4 --crossover params"), "--method no-such-method");
        assertEquals(2, SkipflowCli.execute(failing.toArray(String[]::new)));
        assertFalse(Files.exists(bundle), "a failed stack writes no bundle");
        try (var left = Files.list(root)) {
            assertEquals(List.of(), left.toList(), "nor leaves its staging folder");
        }

        assertEquals(0, SkipflowCli.execute(stack.toArray(String[]::new)));
        List<String> chain = CompressedCheckpoint.readProvenance(bundle).steps().stream()
                .map(CompressedCheckpoint.Step::method).toList();
        assertEquals(List.of("prune", "lowrank"), chain, "the bundle's manifest records both steps back to the original");
        assertEquals(List.of("prune"), CompressedCheckpoint.readProvenance(bundle.resolve("steps/1-prune")).steps().stream()
                .map(CompressedCheckpoint.Step::method).toList());
        assertTrue(Files.isRegularFile(bundle.resolve("router.json")) && Files.isRegularFile(bundle.resolve("exit.json")));
        JsonNode built = StreamingScenario.JSON.readTree(bundle.resolve("stack.json").toFile());
        assertEquals("prune:0.3,lowrank:0.8", built.get("steps").asText());
        assertEquals(4, built.get("parts").size(), built.toString());

        // no --router, no --exit: the job takes the bundle's; metrics windows are read while the job runs
        List<byte[]> values = StreamingScenario.alternatingRequests("s-",
                new String[] {"Once upon a time, there was a little dog named Max who liked to run"}, i -> 24, 6);
        for (JsonNode v : StreamingScenario.completionsFrom(bundle, values, 6,
                (bootstrap, o) -> verifyMetricsSplit(bootstrap, o.metricsTopic, 6))) {
            JsonNode s = v.get("savings");
            JsonNode m = s.get("byMethod");
            double compression = m.get("compression").asDouble();
            double routing = m.get("routing").asDouble();
            double exited = m.get("exit").asDouble();
            assertEquals(s.get("savedFraction").asDouble(), compression + routing + exited, 1e-9, v.toString());
            assertTrue(compression > 0.1, "pruned and low rank: " + v);
            boolean adaptive = Integer.parseInt(v.get("id").asText().substring(2)) % 2 == 0;
            if (adaptive) {
                assertTrue(routing > 0 && s.get("tokenBlocksSkipped").asLong() > 0, "routed: " + v);
                assertTrue(s.get("earlyExitTokens").asLong() > 0 && exited != 0, "exits: " + v);
            } else {
                assertEquals(0.0, routing, v.toString());
                assertEquals(0.0, exited, v.toString());
            }
        }
    }

    /** Every metrics window's split sums to its saved fraction, and the windows count every request. */
    static void verifyMetricsSplit(String bootstrap, String topic, int requests) throws Exception {
        try (AnswerCollector c = new AnswerCollector(bootstrap, topic)) {
            List<AnswerCollector.Answer> got = new ArrayList<>();
            long total = 0;
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (total < requests && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(300), got::add);
                total = 0;
                for (AnswerCollector.Answer a : got) {
                    total += StreamingScenario.JSON.readTree(a.value()).get("requests").asLong();
                }
            }
            assertFalse(got.isEmpty(), "no metrics records");
            assertTrue(total >= requests, "metrics windows counted " + total + " of " + requests);
            for (AnswerCollector.Answer a : got) {
                JsonNode w = StreamingScenario.JSON.readTree(a.value());
                JsonNode m = w.get("byMethod");
                assertEquals(w.get("savedFraction").asDouble(),
                        m.get("compression").asDouble() + m.get("routing").asDouble() + m.get("exit").asDouble(), 1e-6,
                        a.value());
                if (w.get("requests").asLong() > 0) {
                    assertTrue(m.get("compression").asDouble() > 0.1, a.value());
                }
            }
        }
    }
}
