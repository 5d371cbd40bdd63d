package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.skipflow.job.cli.SkipflowCli;
import dev.skipflow.model.flops.FlopCounter;
import dev.skipflow.model.io.ModelLoader;
import dev.skipflow.model.spec.ModelSpec;
import java.nio.file.Path;
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
        String[] prompts = {"Once upon a time", "Lily and Ben went to the park", "The little dog was sad because"};
        List<byte[]> values = StreamingScenario.alternatingRequests("p-", prompts, i -> 10 + i, 6);
        for (JsonNode v : StreamingScenario.completionsFrom(pruned, values, 6, null)) {
            JsonNode s = v.get("savings");
            double share = StreamingScenario.assertCountedAgainstOriginal(v, denseOriginal, prunedCost);
            assertEquals(share, s.get("byMethod").get("compression").asDouble(), 1e-9, "all of it by pruning");
            assertEquals(0.0, s.get("byMethod").get("routing").asDouble(), v.toString());
            assertTrue(share > 0.1, "3 of 5 blocks lose ~30% (the LM head is whole): " + v);
            assertEquals(0, s.get("tokenBlocksSkipped").asLong(), "nothing routed: " + v);
        }
    }
}
