package dev.skipflow.model.routing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.skipflow.model.spec.LlamaConfig;
import dev.skipflow.model.io.ModelFormatException;
import dev.skipflow.model.SyntheticModels;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.data.Documents;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Training a router briefly, saving it, and refusing it where it does not belong. */
class RouterArtifactTest {

    @TempDir
    Path dir;

    @Test
    void aTrainedRouterRoundTripsAndIsRefusedForAnotherModelOrAMalformedFile() throws Exception {
        LlamaModel model = TestModels.model();
        List<int[]> docs = Documents.read(TestModels.shared().resolve("data/tinystories-train-sample.txt"),
                TestModels.tokenizer(), 32, 8);
        RouterArtifact a = RouterTrainer.train(model, "stories260K", docs, null,
                new RouterTrainer.Options(SparsitySchedule.uniform(0.25, 5), 10, 0.01f, 2f, 1f, 2, 0.1, 0.2, 3L), i -> { });
        a = a.withDecodeThresholds(new double[] {-Double.MAX_VALUE, 0.5, 1, -2, Double.MAX_VALUE}, "test thresholds");
        Path file = dir.resolve("router.json");
        a.save(file);
        RouterArtifact b = RouterArtifact.load(file);
        assertArrayEquals(a.w1(), b.w1());
        assertArrayEquals(a.decodeThresholds(), b.decodeThresholds());
        assertEquals(a.modelFingerprint(), model.fingerprint());
        assertTrue(b.routesDecode(), "routes decoding tokens by default");
        a.withRoute("prompt").save(dir.resolve("prompt.json"));
        RouterArtifact prompt = RouterArtifact.load(dir.resolve("prompt.json"));
        assertEquals("prompt", prompt.route());
        assertTrue(!prompt.routesDecode());
        assertArrayEquals(a.decodeThresholds(), prompt.decodeThresholds(), "the route changes nothing else");
        assertEquals(b.schedule(), b.decodeShares(), "without a decode schedule decoding tokens follow the prefill's");
        a.withDecodeSchedule(SparsitySchedule.uniform(0.25, 5).scaledTo(0.1), "decode 10%").save(dir.resolve("d.json"));
        RouterArtifact d = RouterArtifact.load(dir.resolve("d.json"));
        assertArrayEquals(new double[] {0.1, 0.1, 0.1, 0.1, 0.1}, d.decodeShares().perLayer(), 1e-12);
        assertEquals(null, d.decodeThresholds(), "thresholds of the old shares are dropped");
        RouterArtifact searched = d.withSchedule(new SparsitySchedule(new double[] {0.1, 0.1, 0.2, 0.3, 0.3}), "searched");
        assertArrayEquals(d.decodeShares().perLayer(), searched.decodeShares().perLayer(), 1e-12,
                "a new prefill schedule keeps the decode schedule");
        assertEquals(null, searched.decodeThresholds(), "cuts calibrated behind the old prompts are dropped");
        LearnedRouter router = b.routerFor(model, file);
        router.begin(true, 20);
        assertEquals(15, router.keepPrefill(1, TokenRouter.all(20)).length, "keeps 75% of 20 tokens");

        LlamaConfig other = LlamaConfig.llama2c(64, 172, 5, 8, 4, 512, 512, true);
        try (LlamaModel stranger = new LlamaModel(SyntheticModels.weights(other, 1L, "other"), Device.cpu())) {
            var e = assertThrows(ModelFormatException.class, () -> b.routerFor(stranger, file));
            assertTrue(e.getMessage().contains("trained for model stories260K"), e.getMessage());
            // the job's serializable spec carries the artifact's text and refuses the same way on a task manager
            RouterSpec spec = RouterSpec.learned(file, null);
            var refused = assertThrows(ModelFormatException.class, () -> spec.build(stranger, TestModels.tokenizer()));
            assertTrue(refused.getMessage().startsWith(file + ": "), "names the artifact file: " + refused.getMessage());
            TokenRouter fromSpec = spec.build(model, TestModels.tokenizer());
            fromSpec.begin(true, 20);
            assertEquals(15, fromSpec.keepPrefill(1, TokenRouter.all(20)).length, "the artifact's schedule");
            TokenRouter overridden = RouterSpec.learned(file, 0.5).build(model, TestModels.tokenizer());
            overridden.begin(true, 20);
            assertEquals(10, overridden.keepPrefill(1, TokenRouter.all(20)).length, "--sparsity overrides it");
        }
        Files.writeString(dir.resolve("bad.json"), "{\"format\": \"something-else\"}");
        assertTrue(assertThrows(ModelFormatException.class, () -> RouterArtifact.load(dir.resolve("bad.json")))
                .getMessage().contains("not a router artifact"));
        Files.writeString(dir.resolve("cut.json"), Files.readString(file).substring(0, 200));
        assertThrows(ModelFormatException.class, () -> RouterArtifact.load(dir.resolve("cut.json")));
        Files.writeString(dir.resolve("v9.json"), Files.readString(file).replace("\"version\" : 1", "\"version\" : 9"));
        assertTrue(assertThrows(ModelFormatException.class, () -> RouterArtifact.load(dir.resolve("v9.json")))
                .getMessage().contains("version 9"));
    }

    @Test
    void aRouterTrainedForPromptRoutingKeepsTheFirstTokenAndLearnsFromTheServedPredictionsOnly() {
        LlamaModel model = TestModels.model();
        List<int[]> docs = Documents.read(TestModels.shared().resolve("data/tinystories-train-sample.txt"),
                TestModels.tokenizer(), 64, 8);
        RouterTrainer.Options o = new RouterTrainer.Options(SparsitySchedule.uniform(0.3, 5), 6, 0.01f, 1f, 1f, 2, 0.1,
                0.5, 3L, true);
        assertEquals(32, o.promptLength(64), "half of a 64-token document is its prompt");
        assertEquals(16, o.promptLength(20), "at least 16 tokens");
        RouterArtifact a = RouterTrainer.train(model, "stories260K", docs, null, o, i -> { });
        assertTrue(a.training().contains(", 0 non-finite"), a.training());
        LearnedRouter router = new LearnedRouter(a);
        router.begin(true, 40);
        int[] kept = router.keepPrefill(2, TokenRouter.all(40));
        assertEquals(28, kept.length);
        assertEquals(0, kept[0], "the first token (attention sink) stays");
    }
}
