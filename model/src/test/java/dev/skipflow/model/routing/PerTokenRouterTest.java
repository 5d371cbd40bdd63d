package dev.skipflow.model.routing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.decoder.AttentionStats;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.io.ModelFormatException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Per-token decisions: block 0 runs every prompt token, each token is ranked once from block 0's attention, so every
 * later block of the same share keeps the same tokens; the artifact records it, and old files stay per block.
 */
class PerTokenRouterTest {

    @TempDir
    Path dir;

    @Test
    void firstBlockDenseKeepsTheMean() {
        SparsitySchedule s = SparsitySchedule.uniform(0.2, 5).firstBlockDense();
        assertArrayEquals(new double[] {0, 0.25, 0.25, 0.25, 0.25}, s.perLayer(), 1e-12);
        assertEquals(s, s.firstBlockDense(), "idempotent");
        SparsitySchedule only0 = new SparsitySchedule(new double[] {0.4, 0, 0, 0}).firstBlockDense();
        assertArrayEquals(new double[] {0, 0.4 / 3, 0.4 / 3, 0.4 / 3}, only0.perLayer(), 1e-12);
    }

    @Test
    void aPerTokenRouterTrainsServesConsistentlyAndRoundTrips() throws Exception {
        LlamaModel model = TestModels.model();
        List<int[]> docs = Documents.read(TestModels.shared().resolve("data/tinystories-train-sample.txt"),
                TestModels.tokenizer(), 48, 8);
        RouterArtifact a = RouterTrainer.train(model, "stories260K", docs, null,
                new RouterTrainer.Options(SparsitySchedule.uniform(0.3, 5), 8, 0.01f, 1f, 1f, 2, 0, 0.3, 5L, true, true),
                i -> { });
        assertTrue(a.perToken());
        assertEquals(0.0, a.schedule().at(0), "block 0 measures the ranking, so it runs every token");
        assertEquals(0.3, a.schedule().mean(), 1e-12, "the others skip more, for the same mean");
        assertTrue(a.training().contains("per-token"), a.training());

        Path file = dir.resolve("per-token.json");
        a.save(file);
        assertTrue(Files.readString(file).contains("\"decisions\" : \"per-token\""));
        assertTrue(RouterArtifact.load(file).perToken());
        RouterArtifact perBlock = a.withDecisions(RouterArtifact.PER_BLOCK);
        perBlock.save(dir.resolve("per-block.json"));
        assertFalse(Files.readString(dir.resolve("per-block.json")).contains("\"decisions\""), "old files' format");
        assertFalse(RouterArtifact.load(dir.resolve("per-block.json")).perToken());
        Files.writeString(dir.resolve("bad.json"), Files.readString(file).replace("per-token", "sideways"));
        assertTrue(assertThrows(ModelFormatException.class, () -> RouterArtifact.load(dir.resolve("bad.json")))
                .getMessage().contains("decisions must be per-block or per-token"));

        // served: block 0 keeps every token; blocks 1-4 (the same share) keep the very same tokens
        int[] doc = docs.get(0);
        List<int[]> kept = keptPerBlock(model, new LearnedRouter(a), doc);
        assertEquals(doc.length, kept.get(0).length);
        int keep = a.schedule().keep(1, doc.length);
        assertTrue(keep < doc.length, "blocks 1-4 skip tokens");
        for (int l = 1; l < 5; l++) {
            assertArrayEquals(kept.get(1), kept.get(l), "block " + l + " keeps what block 1 keeps");
            assertEquals(keep, kept.get(l).length);
            assertEquals(0, kept.get(l)[0], "the first token (attention sink) stays");
        }
        // --sparsity over a per-token artifact: the same rule, block 0 dense
        List<int[]> overridden = keptPerBlock(model, new LearnedRouter(a, SparsitySchedule.uniform(0.2, 5)), doc);
        assertEquals(doc.length, overridden.get(0).length);
        assertEquals(SparsitySchedule.uniform(0.2, 5).firstBlockDense().keep(2, doc.length), overridden.get(2).length);
    }

    @Test
    void theMixedRankRuleKeepsTheSinkTheRecentShareAndTheMostAttended() {
        float[] importance = new float[10];
        importance[2] = 0.5f;
        importance[5] = 0.9f;
        importance[7] = 0.1f;
        // keep 5 with a recent share of 0.4: the sink, the 2 most recent, then by importance: 5, then 2
        assertArrayEquals(new int[] {0, 2, 5, 8, 9}, MixedRankRouter.keepRows(TokenRouter.all(10), importance, 5, 0.4));
        // share 1: the static router's choice
        assertArrayEquals(new int[] {0, 6, 7, 8, 9}, MixedRankRouter.keepRows(TokenRouter.all(10), importance, 5, 1));
        assertThrows(IllegalArgumentException.class, () -> new MixedRankRouter(SparsitySchedule.uniform(0.2, 5), 1.5));
    }

    @Test
    void theMixedGuideTrainsAPerTokenRouterAndNeedsPerTokenDecisions() {
        LlamaModel model = TestModels.model();
        List<int[]> docs = Documents.read(TestModels.shared().resolve("data/tinystories-train-sample.txt"),
                TestModels.tokenizer(), 48, 8);
        RouterArtifact a = RouterTrainer.train(model, "stories260K", docs, null,
                new RouterTrainer.Options(SparsitySchedule.uniform(0.3, 5), 6, 0.01f, 1f, 1f, 2, 0, 1, 5L, true, true, 0.5),
                i -> { });
        assertTrue(a.training().contains("mixed-rank router, recent share 0.50"), a.training());
        assertTrue(Double.isFinite(a.b2()));
        var o = dev.skipflow.model.training.RouterRecipe.Options.defaults(0.3).withPromptOnly(true);
        var mixed = new dev.skipflow.model.training.RouterRecipe.Options(0.3, null, 4, 2, 32, 6, 4, 48, 4, 0, 0.01f, 1f,
                0, 1, dev.skipflow.model.training.RouterRecipe.Guide.MIXED, 4, 1f, 5L);
        var e = assertThrows(IllegalArgumentException.class, () -> dev.skipflow.model.training.RouterRecipe.run(model,
                "stories260K", docs, mixed, (name, total) -> new dev.skipflow.model.training.RouterRecipe.Phase() {
                    @Override
                    public void accept(int done) {}

                    @Override
                    public void close() {}
                }, line -> { }));
        assertTrue(e.getMessage().contains("per-token"), e.getMessage());
        // with per-token decisions the recipe picks a share on the held-out documents and trains toward it
        List<String> log = new ArrayList<>();
        RouterArtifact picked = dev.skipflow.model.training.RouterRecipe.run(model, "stories260K", docs,
                mixed.withPerToken(true).withPromptOnly(true), (name, total) -> new dev.skipflow.model.training.RouterRecipe.Phase() {
                    @Override
                    public void accept(int done) {}

                    @Override
                    public void close() {}
                }, log::add);
        assertTrue(picked.perToken());
        assertTrue(log.stream().anyMatch(l -> l.startsWith("mixed-rank guide: recent share")), log.toString());
        assertTrue(picked.training().contains("mixed-rank router"), picked.training());
        assertEquals(o.sparsity(), picked.schedule().mean(), 1e-9);
    }

    /** The rows each block kept in one routed prefill of {@code doc}. */
    private static List<int[]> keptPerBlock(LlamaModel model, LearnedRouter router, int[] doc) {
        List<int[]> kept = new ArrayList<>();
        TokenRouter recording = new TokenRouter() {
            @Override
            public void begin(boolean prefill, int rows) {
                router.begin(prefill, rows);
            }

            @Override
            public int[] keepPrefill(int layer, int[] positions) {
                int[] k = router.keepPrefill(layer, positions);
                kept.add(Arrays.copyOf(k, k.length));
                return k;
            }

            @Override
            public void attended(int layer, Candidates ran, AttentionStats attention) {
                router.attended(layer, ran, attention);
            }

            @Override
            public String describe() {
                return "recording " + router.describe();
            }
        };
        try (KvCache cache = new KvCache(model, 1, doc.length, true); NDManager step = model.newStepManager()) {
            Forward.run(model, cache, step, true, Forward.prompt(0, 0, doc, null, null, false, doc.length,
                    doc.length - 1), Forward.Plan.routed(recording));
        }
        return kept;
    }
}
