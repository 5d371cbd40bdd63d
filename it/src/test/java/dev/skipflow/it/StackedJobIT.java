package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import dev.skipflow.job.JobOptions;
import dev.skipflow.job.cli.SkipflowCli;
import dev.skipflow.job.local.AnswerCollector;
import dev.skipflow.job.local.EmbeddedKafkaBroker;
import dev.skipflow.job.local.LocalRunner;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.exit.ExitTrainer;
import dev.skipflow.model.io.CompressedCheckpoint;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A stacked bundle through Kafka: stories260K pruned, then its pruned blocks made low rank, served with a router
 * and an exit classifier trained on the compressed model. Every completion's {@code savings.byMethod} sums to its
 * {@code savedFraction}, adaptive requests save by all three methods, dense ones by compression only; the metrics
 * topic carries the same split.
 */
class StackedJobIT {

    @Test
    void aPrunedLowRankModelWithARouterAndAnExitSavesByEachMethodAndTheSharesSumToTheWhole() throws Exception {
        Path pruned = Path.of("target", "it-stack-prune-" + System.nanoTime());
        Path stacked = Path.of("target", "it-stack-lowrank-" + System.nanoTime());
        String original = StreamingScenario.shared().resolve("models/stories260K/stories260K.bin").toString();
        assertEquals(0, SkipflowCli.execute("prune", "--model", original, "--device", "cpu", "--ratio", "0.3",
                "--samples", "3", "--recover-steps", "2", "--recover-batch", "1", "--recover-max-len", "32",
                "--out", pruned.toString()));
        assertEquals(0, SkipflowCli.execute("lowrank", "--model", pruned.toString(), "--device", "cpu",
                "--params-ratio", "0.8", "--steps", "3", "--samples", "4", "--crossover", "params",
                "--out", stacked.toString()));
        List<String> chain = CompressedCheckpoint.readProvenance(stacked).steps().stream()
                .map(CompressedCheckpoint.Step::method).toList();
        assertEquals(2, chain.size(), "the manifest records both steps back to the original: " + chain);

        PrunedJobIT.Holder h = new PrunedJobIT.Holder();
        new picocli.CommandLine(h).parseArgs("--model", stacked.toString(), "--device", "cpu");
        Path exit = Path.of("target", "it-stack-exit-" + System.nanoTime() + ".json");
        try (LlamaModel m = new LlamaModel(h.model.weights(), Device.cpu())) {
            var docs = Documents.read(StreamingScenario.shared().resolve("data/tinystories-train-sample.txt"),
                    h.model.tokenizer(), 64, 40);
            ExitTrainer.train(m, "stacked", docs, new ExitTrainer.Options(0.9, 0.3, 1, 0, 2, 1), i -> { }, line -> { })
                    .artifact().save(exit);
        }
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(0, Path.of("target", "it-kafka-" + System.nanoTime()), true)) {
            JobOptions o = StreamingScenario.options(broker.bootstrapServers(), StreamingScenario.suffix());
            o.model = h.model;
            o.routing = RoutedJobIT.routing("--baseline", "static", "--sparsity", "0.3");
            o.exit = exit;
            List<byte[]> values = StreamingScenario.alternatingRequests("s-",
                    new String[] {"Once upon a time, there was a little dog named Max who liked to run"}, i -> 24, 6);
            try (LocalRunner runner = LocalRunner.start(o, Path.of("target"), 0, 1, 0);
                    AnswerCollector answers = runner.answers()) {
                runner.send(values);
                List<AnswerCollector.Answer> got = answers.collect(6, Duration.ofMinutes(2), Duration.ofSeconds(1));
                assertEquals(6, got.size());
                for (AnswerCollector.Answer a : got) {
                    assertEquals(o.completionsTopic, a.topic(), a.value());
                    JsonNode v = StreamingScenario.JSON.readTree(a.value());
                    JsonNode s = v.get("savings");
                    JsonNode m = s.get("byMethod");
                    double compression = m.get("compression").asDouble();
                    double routing = m.get("routing").asDouble();
                    double exited = m.get("exit").asDouble();
                    assertEquals(s.get("savedFraction").asDouble(), compression + routing + exited, 1e-9, a.value());
                    assertTrue(compression > 0.1, "pruned and low rank: " + a.value());
                    boolean adaptive = Integer.parseInt(v.get("id").asText().substring(2)) % 2 == 0;
                    if (adaptive) {
                        assertTrue(routing > 0 && s.get("tokenBlocksSkipped").asLong() > 0, "routed: " + a.value());
                        assertTrue(s.get("earlyExitTokens").asLong() > 0 && exited != 0, "exits: " + a.value());
                    } else {
                        assertEquals(0.0, routing, a.value());
                        assertEquals(0.0, exited, a.value());
                    }
                }
                verifyMetricsSplit(broker.bootstrapServers(), o.metricsTopic, 6); // windows fire while the job runs
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
