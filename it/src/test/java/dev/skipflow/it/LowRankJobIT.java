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
 * A low-rank model made by `./skipflow lowrank` (SoftLMs' learned thresholds) serves the streaming job from its
 * checkpoint folder: its factored maps run as two thin matmuls in prefill and batched decode, and every completion's
 * savings count against the original dense model, so they show the compressed share.
 */
class LowRankJobIT {

    @Test
    void completionsOfALowRankModelShowTheCompressedShareInTheirSavings() throws Exception {
        Path pruned = Path.of("target", "it-lowrank-" + System.nanoTime());
        String original = StreamingScenario.shared().resolve("models/stories260K/stories260K.bin").toString();
        assertEquals(0, SkipflowCli.execute("lowrank", "--model", original, "--device", "cpu", "--params-ratio", "0.5",
                "--samples", "4", "--sample-length", "32", "--steps", "3", "--docs-per-step", "2", "--crossover", "params",
                "--svd-cache", "none", "--out", pruned.toString()));
        ModelSpec spec = ModelLoader.spec(pruned);
        FlopCounter denseOriginal = FlopCounter.of(spec.original());
        FlopCounter prunedCost;
        try (var m = new dev.skipflow.model.decoder.LlamaModel(ModelLoader.load(pruned), ai.djl.Device.cpu())) {
            prunedCost = m.flops();
            assertTrue(m.block(0).wo() instanceof dev.skipflow.model.nn.LowRankLinear, "o served as two factors");
        }
        String[] prompts = {"Once upon a time", "Lily and Ben went to the park", "The little dog was sad because"};
        List<byte[]> values = StreamingScenario.alternatingRequests("p-", prompts, i -> 10 + i, 6);
        for (JsonNode v : StreamingScenario.completionsFrom(pruned, values, 6, null)) {
            JsonNode s = v.get("savings");
            double share = StreamingScenario.assertCountedAgainstOriginal(v, denseOriginal, prunedCost);
            assertTrue(share > 0.2, "the blocks' linear maps cost half (the LM head is whole): " + v);
            assertEquals(0, s.get("tokenBlocksSkipped").asLong(), "nothing routed: " + v);
        }
    }
}
