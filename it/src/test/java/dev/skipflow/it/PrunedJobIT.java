package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.skipflow.job.JobOptions;
import dev.skipflow.job.cli.SkipflowCli;
import dev.skipflow.job.local.AnswerCollector;
import dev.skipflow.job.local.EmbeddedKafkaBroker;
import dev.skipflow.job.local.LocalRunner;
import dev.skipflow.model.flops.FlopCounter;
import dev.skipflow.model.io.ModelLoader;
import dev.skipflow.model.spec.ModelSpec;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A model pruned by `./skipflow prune` serves the streaming job from its checkpoint folder: prompts through Kafka,
 * completions back, and every completion's savings count against the original dense model, so they show what
 * pruning removed (for adaptive and dense requests alike: the pruned weights are all there is).
 */
class PrunedJobIT {

    @Test
    void completionsOfAPrunedModelShowThePrunedShareInTheirSavings() throws Exception {
        Path pruned = Path.of("target", "it-pruned-" + System.nanoTime());
        String original = StreamingScenario.shared().resolve("models/stories260K/stories260K.bin").toString();
        assertEquals(0, SkipflowCli.execute("prune", "--model", original, "--device", "cpu", "--ratio", "0.3",
                "--samples", "3", "--recover-steps", "2", "--recover-batch", "1", "--recover-max-len", "32",
                "--out", pruned.toString()));
        ModelSpec spec = ModelLoader.spec(pruned);
        FlopCounter denseOriginal = FlopCounter.of(spec.original());
        FlopCounter prunedCost;
        try (var m = new dev.skipflow.model.decoder.LlamaModel(ModelLoader.load(pruned), ai.djl.Device.cpu())) {
            prunedCost = m.flops();
        }
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(0, Path.of("target", "it-kafka-" + System.nanoTime()), true)) {
            JobOptions o = StreamingScenario.options(broker.bootstrapServers(), StreamingScenario.suffix());
            Holder h = new Holder();
            new picocli.CommandLine(h).parseArgs("--model", pruned.toString(), "--device", "cpu");
            o.model = h.model;
            String[] prompts = {"Once upon a time", "Lily and Ben went to the park", "The little dog was sad because"};
            List<byte[]> values = StreamingScenario.alternatingRequests("p-", prompts, i -> 10 + i, 6);
            try (LocalRunner runner = LocalRunner.start(o, Path.of("target"), 0, 1, 0);
                    AnswerCollector answers = runner.answers()) {
                runner.send(values);
                List<AnswerCollector.Answer> got = answers.collect(6, Duration.ofMinutes(2), Duration.ofSeconds(1));
                assertEquals(6, got.size());
                for (AnswerCollector.Answer a : got) {
                    assertEquals(o.completionsTopic, a.topic(), a.value());
                    JsonNode v = StreamingScenario.JSON.readTree(a.value());
                    JsonNode s = v.get("savings");
                    int prompt = v.get("promptTokens").asInt();
                    int completion = v.get("completionTokens").asInt();
                    assertTrue(completion > 0, a.value());
                    // prefill of the prompt (one LM head), then one decode step per further token
                    long dense = 0;
                    long executed = 0;
                    for (int pos = 0; pos < prompt + completion - 1; pos++) {
                        dense += denseOriginal.allBlocks(pos);
                        executed += prunedCost.allBlocks(pos);
                    }
                    dense += completion * denseOriginal.head();
                    executed += completion * prunedCost.head();
                    assertEquals(dense, s.get("denseFlops").asLong(), "denseFlops is the original dense model's: " + a.value());
                    assertEquals(executed, s.get("executedFlops").asLong(), "executedFlops is the pruned model's: " + a.value());
                    double share = 1 - executed / (double) dense;
                    assertEquals(share, s.get("savedFraction").asDouble(), 1e-9, a.value());
                    assertEquals(share, s.get("byMethod").get("compression").asDouble(), 1e-9, "all of it by pruning");
                    assertEquals(0.0, s.get("byMethod").get("routing").asDouble(), a.value());
                    assertTrue(share > 0.1, "3 of 5 blocks lose ~30% (the LM head is whole): " + a.value());
                    assertEquals(0, s.get("tokenBlocksSkipped").asLong(), "nothing routed: " + a.value());
                }
            }
        }
    }

    /** Parses model options the way the CLI does. */
    @picocli.CommandLine.Command(name = "holder")
    static final class Holder {
        @picocli.CommandLine.Mixin
        dev.skipflow.job.options.ModelOptions model = new dev.skipflow.job.options.ModelOptions();
    }
}
