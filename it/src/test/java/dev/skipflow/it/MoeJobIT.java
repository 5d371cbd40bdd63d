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
 * A mixture of experts made by `./skipflow moe` serves the streaming job from its checkpoint folder: prompts through
 * Kafka, completions back, every completion's savings count against the original dense model (half of each MLP, the
 * router included) and say how many tokens each expert took in each block; the same prompt gives the same text.
 */
class MoeJobIT {

    @Test
    void completionsOfAMixtureOfExpertsShowItsSavingsAndExpertCounts() throws Exception {
        Path pruned = Path.of("target", "it-moe-" + System.nanoTime());
        String original = StreamingScenario.shared().resolve("models/stories260K/stories260K.bin").toString();
        assertEquals(0, SkipflowCli.execute("moe", "--model", original, "--device", "cpu", "--active-ratio", "0.5",
                "--experts", "4", "--steps", "20", "--samples", "8", "--sample-length", "32", "--batch", "2",
                "--out", pruned.toString()));
        ModelSpec spec = ModelLoader.spec(pruned);
        FlopCounter denseOriginal = FlopCounter.of(spec.original());
        FlopCounter prunedCost;
        try (var m = new dev.skipflow.model.decoder.LlamaModel(ModelLoader.load(pruned), ai.djl.Device.cpu())) {
            prunedCost = m.flops();
        }
        String[] prompts = {"Once upon a time", "Lily and Ben went to the park", "The little dog was sad because"};
        // requests i and i + 3 are the same prompt, same length
        List<byte[]> values = StreamingScenario.alternatingRequests("p-", prompts, i -> 10 + i % 3, 6);
        java.util.Map<String, String> texts = new java.util.HashMap<>();
        for (JsonNode v : StreamingScenario.completionsFrom(pruned, values, 6, null)) {
            JsonNode s = v.get("savings");
            double share = StreamingScenario.assertCountedAgainstOriginal(v, denseOriginal, prunedCost);
            int tokensFed = v.get("promptTokens").asInt() + v.get("completionTokens").asInt() - 1;
            assertTrue(share > 0.1, "every MLP runs half its channels (the LM head is whole): " + v);
            assertEquals(0, s.get("tokenBlocksSkipped").asLong(), "no block skipped: " + v);
            JsonNode experts = s.get("experts");
            assertEquals(spec.nLayers(), experts.size(), v.toString());
            for (JsonNode block : experts) {
                assertEquals(4, block.size(), v.toString());
                long tokens = 0;
                for (JsonNode t : block) {
                    tokens += t.asLong();
                }
                assertEquals(tokensFed, tokens, "each token ran one expert per block: " + v);
            }
            texts.merge(String.valueOf(Integer.parseInt(v.get("id").asText().substring(2)) % 3), v.get("text").asText(), (x, y) -> {
                assertEquals(x, y, "the same prompt, the same tokens");
                return x;
            });
        }
        assertEquals(3, texts.size(), "three prompts, each asked twice");
    }
}
