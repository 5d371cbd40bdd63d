package dev.skipflow.model.compression;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.compression.prune.Aggregation;
import dev.skipflow.model.compression.prune.GroupRemoval;
import dev.skipflow.model.compression.prune.Importance;
import dev.skipflow.model.compression.prune.PruneOptions;
import dev.skipflow.model.compression.prune.PrunePlan;
import dev.skipflow.model.compression.prune.Pruner;
import dev.skipflow.model.bench.ThroughputBench;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.eval.PerplexityEvaluator;
import dev.skipflow.model.flops.FlopCounter;
import dev.skipflow.model.io.CompressedCheckpoint;
import dev.skipflow.model.io.ModelLoader;
import dev.skipflow.model.nn.DenseLinear;
import dev.skipflow.model.spec.BlockSpec;
import dev.skipflow.model.spec.LlamaConfig;
import dev.skipflow.model.spec.ModelSpec;
import dev.skipflow.model.training.RouterRecipe;
import dev.skipflow.model.weights.BlockWeights;
import dev.skipflow.model.weights.Fingerprint;
import dev.skipflow.model.weights.LinearWeights;
import dev.skipflow.model.weights.MlpWeights;
import dev.skipflow.model.weights.ModelWeights;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * LLM-Pruner on the real stories260K (5 blocks; 8 heads in 4 KV groups of head size 8; MLP 172): coupled groups come
 * out whole, the ratio becomes the expected widths and parameter count, gradients reach every member of a group,
 * masked groups are the ones removed, and a pruned checkpoint loads everywhere with FLOPs against the original.
 */
class PruneTest {

    static final RouterRecipe.Phases QUIET = (name, total) -> new RouterRecipe.Phase() {
        @Override
        public void accept(int done) {}

        @Override
        public void close() {}
    };

    @TempDir
    Path dir;

    static ModelWeights dense() {
        return ModelWeights.of(TestModels.weights());
    }

    static List<int[]> calibration() {
        return Documents.read(TestModels.shared().resolve("data/tinystories-train-sample.txt"), TestModels.tokenizer(), 64,
                80);
    }

    static PruneOptions options(double ratio, Importance importance) {
        return new PruneOptions(ratio, importance, Aggregation.SUM, null, null, 4, 64, 8, 1, 42,
                new LoraRecovery.Options(0, 8, 16, 0.05f, 1e-3f, 2, 42), false, 0);
    }

    static Pruner.Result prune(ModelWeights w, PruneOptions o) {
        return Pruner.run(w, calibration(), calibration(), o, Map.of(), Device.cpu(), QUIET);
    }

    static int[] prompt() {
        return TestModels.tokenizer().encode("Once upon a time, there was a little girl named Lily. She loved to play", true);
    }

    static float[] logits(ModelWeights w, int[] tokens) {
        try (LlamaModel m = new LlamaModel(w, Device.cpu())) {
            return TestModels.prefillLogits(m, tokens);
        }
    }

    @Test
    void removingAGroupTakesItsQueryKeyValueRowsAndOutputColumnsTogether() {
        ModelWeights w = dense();
        int hd = w.spec().headSize();
        BlockWeights b = w.blocks().get(1);
        int[] kv = {0, 2, 3};
        int[] channels = new int[140];
        for (int i = 0; i < channels.length; i++) {
            channels[i] = i + (i >= 70 ? 32 : 0); // channels 70..101 removed
        }
        BlockWeights p = GroupRemoval.keep(b, w.spec().block(1), hd, kv, channels);
        assertEquals(new BlockSpec(6, 3, 140, BlockSpec.MlpKind.GATED, 0), p.spec(w.spec().dim(), hd));
        int dim = w.spec().dim();
        float[] wq = b.wq().toDense();
        float[] pq = p.wq().toDense();
        // kept group 2 (its query heads 4 and 5, rows 32..47) is now group 1 (rows 16..31)
        for (int r = 0; r < 16; r++) {
            for (int c = 0; c < dim; c++) {
                assertEquals(wq[(32 + r) * dim + c], pq[(16 + r) * dim + c]);
            }
        }
        float[] wk = b.wk().toDense();
        float[] pk = p.wk().toDense();
        for (int c = 0; c < dim; c++) {
            assertEquals(wk[(2 * hd + 3) * dim + c], pk[(hd + 3) * dim + c], "k row 3 of group 2");
        }
        float[] wo = b.wo().toDense();
        float[] po = p.wo().toDense();
        for (int r = 0; r < dim; r++) {
            assertEquals(wo[r * 64 + 40], po[r * 48 + 24], "o column of group 2's second head");
        }
        MlpWeights.Gated g = (MlpWeights.Gated) b.mlp();
        MlpWeights.Gated pg = (MlpWeights.Gated) p.mlp();
        assertEquals(g.down().toDense()[5 * 172 + 110], pg.down().toDense()[5 * 140 + 78], "down column 110 is now 78");
        assertEquals(g.gate().toDense()[110 * dim + 9], pg.gate().toDense()[78 * dim + 9], "gate row 110 is now 78");
        assertThrows(IllegalArgumentException.class, () -> GroupRemoval.keep(b, w.spec().block(1), hd, new int[0], channels));
        assertThrows(IllegalArgumentException.class, () -> GroupRemoval.keep(b, w.spec().block(1), hd, new int[] {2, 1},
                channels));
    }

    @Test
    void theRatioBecomesWidthsAndParametersAsPlanned() {
        ModelWeights w = dense();
        Pruner.Result r = prune(w, options(0.2, Importance.L2));
        ModelSpec s = r.weights().spec();
        assertEquals(w.spec(), s.original());
        for (int l : new int[] {0, 4}) {
            assertSame(w.blocks().get(l), r.weights().blocks().get(l), "block " + l + " stays dense");
        }
        for (int l = 1; l <= 3; l++) {
            // 4 kv heads x 0.8 = 3.2 -> 3 groups (25% of attention); the MLP makes up the rest, to a multiple of 8
            assertEquals(new BlockSpec(6, 3, 144, BlockSpec.MlpKind.GATED, 0), s.block(l), "block " + l);
        }
        long perBlock = 2 * 64 + 2L * 64 * 64 + 2L * 32 * 64 + 3L * 64 * 172;
        long removed = 3 * (2L * 16 * 64 + 2L * 8 * 64 + 28L * 3 * 64);
        assertEquals(w.parameterCount() - removed, r.weights().parameterCount());
        assertEquals(removed / (3.0 * perBlock), r.plan().removedShare(), 1e-12);
        assertEquals(0.2, r.plan().removedShare(), 0.03, "within rounding of the ratio");
        assertEquals(s.parameterCount(), r.weights().parameterCount());

        PrunePlan half = PrunePlan.of(w.spec(), List.of(1, 2), 0.5, 8);
        for (PrunePlan.Block b : half.blocks()) {
            assertEquals(2, b.keptKvHeads());
            assertEquals(0, b.keptChannels() % 8);
            assertEquals(0.5, b.removedShare(), 0.05);
        }
    }

    /**
     * A global threshold keeps the uniform plan's totals of KV groups and channels but moves them to the blocks whose
     * scores are higher, in chunks of the rounding, never below one chunk per block.
     */
    @Test
    void aGlobalThresholdMovesWidthToTheBlocksThatScoreHigher() {
        ModelSpec spec = dense().spec();
        List<Integer> layers = List.of(1, 2, 3);
        PrunePlan uniform = PrunePlan.of(spec, layers, 0.2, 8);
        // block 1 scores everything high, block 3 low, block 2 in between
        List<double[]> groups = new ArrayList<>();
        List<double[]> channels = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            double[] g = new double[4];
            double[] c = new double[172];
            for (int k = 0; k < g.length; k++) {
                g[k] = (3 - i) * 10 + k;
            }
            for (int k = 0; k < c.length; k++) {
                c[k] = (3 - i) * 1000 + k;
            }
            groups.add(g);
            channels.add(c);
        }
        PrunePlan global = PrunePlan.global(spec, layers, 0.2, 8, groups, channels);
        int kv = 0;
        int ch = 0;
        for (PrunePlan.Block b : global.blocks()) {
            kv += b.keptKvHeads();
            ch += b.keptChannels();
            assertTrue(b.keptKvHeads() >= 1 && b.keptChannels() >= 8, b.toString());
            assertTrue(b.keptChannels() == b.channels() || b.keptChannels() % 8 == 0, b.toString());
        }
        assertEquals(uniform.blocks().stream().mapToInt(PrunePlan.Block::keptKvHeads).sum(), kv);
        assertEquals(uniform.blocks().stream().mapToInt(PrunePlan.Block::keptChannels).sum(), ch, 8);
        assertEquals(4, global.blocks().get(0).keptKvHeads(), "the best block keeps every head");
        assertEquals(172, global.blocks().get(0).keptChannels(), "and every channel");
        assertTrue(global.blocks().get(2).keptChannels() < uniform.blocks().get(2).keptChannels(), "the worst loses more");
        assertEquals(uniform.removedShare(), global.removedShare(), 0.02);

        // and through the pruner, on real gradients: the same totals, a checkpoint that runs
        PruneOptions o = options(0.2, Importance.ELEMENT1);
        PruneOptions g = new PruneOptions(0.2, Importance.ELEMENT1, Aggregation.SUM, null, null, 4, 64, 8, 1, 42,
                o.recovery(), true, 0);
        Pruner.Result r = prune(dense(), g);
        assertEquals(prune(dense(), o).plan().removedShare(), r.plan().removedShare(), 0.02);
        for (PrunePlan.Block b : r.plan().blocks()) {
            assertEquals(b.keptChannels(), r.weights().spec().block(b.layer()).mlpHidden(), "the plan is what was kept");
        }
        try (LlamaModel m = new LlamaModel(r.weights(), Device.cpu())) {
            double ppl = new PerplexityEvaluator(m).evaluate(calibration().subList(0, 8), i -> { }).perplexity();
            assertTrue(Double.isFinite(ppl) && ppl < 100, "ppl " + ppl);
        }
    }

    @Test
    void iterativeStepsEndAtTheOneShotWidths() {
        ModelWeights w = dense();
        PruneOptions once = options(0.3, Importance.L1);
        PruneOptions twice = new PruneOptions(0.3, Importance.L1, Aggregation.MAX, 1, 3, 4, 64, 8, 2, 42, once.recovery(), false, 0);
        assertEquals(prune(w, once).weights().spec(), prune(w, twice).weights().spec());
    }

    /**
     * In blocks 1-3, KV group 2's query heads write nothing (their o columns are zero) and 28 channels' down columns
     * are zero: a first-order, second-order or vector-wise score is exactly 0 for them (no weight or no gradient), so
     * they are what pruning at 20% removes, and the pruned model computes what the masked dense one did.
     */
    @ParameterizedTest
    @EnumSource(value = Importance.class, names = {"ELEMENT1", "ELEMENT2", "VECTOR"})
    void maskedGroupsAreTheOnesRemovedAndTheOutputStays(Importance importance) {
        ModelWeights w = dense();
        List<BlockWeights> blocks = new ArrayList<>(w.blocks());
        int[] masked = new int[28];
        for (int i = 0; i < masked.length; i++) {
            masked[i] = 3 + 6 * i;
        }
        for (int l = 1; l <= 3; l++) {
            BlockWeights b = blocks.get(l);
            float[] wo = b.wo().toDense().clone();
            for (int r = 0; r < 64; r++) {
                for (int c = 32; c < 48; c++) {
                    wo[r * 64 + c] = 0f;
                }
            }
            MlpWeights.Gated g = (MlpWeights.Gated) b.mlp();
            float[] down = g.down().toDense().clone();
            for (int r = 0; r < 64; r++) {
                for (int c : masked) {
                    down[r * 172 + c] = 0f;
                }
            }
            blocks.set(l, new BlockWeights(b.rmsAtt(), b.wq(), b.wk(), b.wv(), new LinearWeights.Dense(64, 64, wo),
                    b.rmsFfn(), new MlpWeights.Gated(g.gate(), g.up(), new LinearWeights.Dense(64, 172, down))));
        }
        ModelWeights maskedModel = new ModelWeights(w.spec(), w.tokenEmbedding(), blocks, w.rmsFinal(), w.classifier(),
                "masked");
        Pruner.Result r = prune(maskedModel, options(0.2, importance));
        for (Pruner.Kept k : r.kept()) {
            assertArrayEquals(new int[] {0, 1, 3}, k.kvHeads(), "block " + k.layer() + " drops group 2");
            assertEquals(144, k.channels().length);
            for (int c : k.channels()) {
                assertTrue(java.util.Arrays.binarySearch(masked, c) < 0, "block " + k.layer() + " kept masked channel " + c);
            }
        }
        int[] p = prompt();
        float d = TestModels.maxDifference(logits(maskedModel, p), logits(r.weights(), p));
        assertTrue(d < TestModels.LOGIT_TOLERANCE, "pruned vs masked dense logits differ by " + d);
    }

    /**
     * The gradients importance is built on, checked by finite differences on stories260K: an element of k and one of
     * v in block 2 reach the loss only through the KV cache, so this is the one forward pass's gradient path there.
     */
    @Test
    void gradientsOfKeysAndValuesMatchFiniteDifferences() {
        ModelWeights w = dense();
        int[] doc = prompt();
        int q = 64;
        int kv = 32;
        float[] grad;
        try (LlamaModel model = new LlamaModel(w, Device.cpu())) {
            NDArray weightT = ((DenseLinear) model.block(2).qkv()).weightT(); // [dim, q + 2 kv], norm folded in
            weightT.setRequiresGradient(true);
            try (KvCache cache = new KvCache(model, 1, doc.length); NDManager m = model.newStepManager();
                    GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                gc.backward(NextTokenLoss.of(model, cache, m, doc));
            }
            try (NDArray g = weightT.getGradient()) {
                grad = g.toFloatArray();
            }
        }
        float[] rms = w.blocks().get(2).rmsAtt();
        for (int[] span : new int[][] {{q, q + kv}, {q + kv, q + 2 * kv}}) {
            int best = -1;
            for (int i = 0; i < grad.length; i++) {
                int col = i % (q + 2 * kv);
                if (col >= span[0] && col < span[1] && (best < 0 || Math.abs(grad[i]) > Math.abs(grad[best]))) {
                    best = i;
                }
            }
            int in = best / (q + 2 * kv);
            int row = best % (q + 2 * kv) - span[0];
            double autograd = grad[best] * rms[in]; // W' = W diag(rms): dL/dW = dL/dW' rms
            boolean isK = span[0] == q;
            double h = 0.02;
            double numeric = (loss(perturbed(w, isK, row * 64 + in, h), doc) - loss(perturbed(w, isK, row * 64 + in, -h), doc))
                    / (2 * h);
            assertTrue(Math.abs(autograd) > 1e-3, "a sizeable gradient to check: " + autograd);
            assertEquals(numeric, autograd, 0.05 * Math.abs(numeric), (isK ? "k" : "v") + " element");
        }
    }

    private static ModelWeights perturbed(ModelWeights w, boolean k, int index, double h) {
        List<BlockWeights> blocks = new ArrayList<>(w.blocks());
        BlockWeights b = blocks.get(2);
        LinearWeights target = k ? b.wk() : b.wv();
        float[] m = target.toDense().clone();
        m[index] += (float) h;
        LinearWeights changed = new LinearWeights.Dense(target.out(), target.in(), m);
        blocks.set(2, new BlockWeights(b.rmsAtt(), b.wq(), k ? changed : b.wk(), k ? b.wv() : changed, b.wo(), b.rmsFfn(),
                b.mlp()));
        return new ModelWeights(w.spec(), w.tokenEmbedding(), blocks, w.rmsFinal(), w.classifier(), "perturbed");
    }

    private static double loss(ModelWeights w, int[] doc) {
        try (LlamaModel model = new LlamaModel(w, Device.cpu()); KvCache cache = new KvCache(model, 1, doc.length);
                NDManager m = model.newStepManager()) {
            return NextTokenLoss.of(model, cache, m, doc).getFloat();
        }
    }

    @Test
    void aPrunedCheckpointRoundTripsLoadsEverywhereAndCountsFlopsAgainstTheOriginal() throws Exception {
        ModelWeights w = dense();
        Pruner.Result r = prune(w, options(0.3, Importance.ELEMENT1));
        Path out = dir.resolve("pruned");
        Path tokenizer = TestModels.shared().resolve("models/stories260K/tok512.bin");
        CompressedCheckpoint.Provenance provenance = CheckpointOutput.provenance(w, null, "stories260K.bin", r.step());
        CheckpointOutput.write(r.weights(), provenance, out, false, List.of(tokenizer));
        assertEquals(r.weights().spec(), ModelLoader.spec(out));
        ModelWeights loaded = ModelLoader.load(out);
        assertEquals(Fingerprint.of(r.weights()), Fingerprint.of(loaded));
        assertEquals(out.resolve("tok512.bin"), ModelPaths.tokenizer(null, out), "the tokenizer is found beside it");
        CompressedCheckpoint.Provenance read = CompressedCheckpoint.readProvenance(out);
        assertEquals(Fingerprint.of(w), read.originalFingerprint());
        assertEquals("prune", read.steps().get(0).method());
        assertEquals(0.3, ((Number) read.steps().get(0).settings().get("ratio")).doubleValue());
        assertEquals("element1", read.steps().get(0).settings().get("importance"));
        int[] p = prompt();
        assertTrue(TestModels.maxDifference(logits(r.weights(), p), logits(loaded, p)) < 1e-6);
        try (LlamaModel m = new LlamaModel(loaded, Device.cpu())) {
            FlopCounter dense = FlopCounter.of(w.spec());
            FlopCounter f = m.flops();
            for (int pos : new int[] {0, 100}) {
                assertEquals(dense.allBlocks(pos), f.denseAllBlocks(pos), "dense FLOPs are the original's");
                double saved = 1 - f.allBlocks(pos) / (double) f.denseAllBlocks(pos);
                assertTrue(saved > 0.15 && saved < 0.25, "3 of 5 blocks lose ~30%: " + saved);
            }
        }
        // an existing output is refused without --force and left as it was; with it, replaced whole
        long size = Files.size(out.resolve(CompressedCheckpoint.TENSORS));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CheckpointOutput.write(w, provenance, out, false, List.of()));
        assertTrue(e.getMessage().contains("already exists"), e.getMessage());
        assertEquals(size, Files.size(out.resolve(CompressedCheckpoint.TENSORS)));
        CheckpointOutput.write(w, provenance, out, true, List.of());
        assertEquals(w.spec(), ModelLoader.spec(out).original());
        assertFalse(Files.exists(out.resolve("tok512.bin")), "replaced whole, not merged");
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(List.of(out), left.toList(), "no temporary folders left behind");
        }
        Path unrelated = Files.createDirectories(dir.resolve("unrelated"));
        Files.writeString(unrelated.resolve("notes.txt"), "keep me");
        e = assertThrows(IllegalArgumentException.class, () -> CheckpointOutput.requireWritable(unrelated, true));
        assertTrue(e.getMessage().contains("not a compressed checkpoint"), e.getMessage());
    }

    @Test
    void evalAndBenchRunThePrunedModelSideBySideWithItsOriginal() {
        ModelWeights w = dense();
        Pruner.Result r = prune(w, options(0.2, Importance.L1));
        List<int[]> docs = Documents.read(TestModels.shared().resolve("data/tinystories-valid-sample.txt"),
                TestModels.tokenizer(), 64, 3);
        try (LlamaModel original = new LlamaModel(w, Device.cpu()); LlamaModel pruned = new LlamaModel(r.weights(), Device.cpu())) {
            var c = new PerplexityEvaluator(pruned).againstOriginal(original, docs, i -> { });
            assertEquals(new PerplexityEvaluator(original).evaluate(docs, i -> { }).perplexity(), c.original().perplexity(),
                    1e-9, "the original's pass is its own dense pass");
            assertTrue(c.agreement() > 0.3 && c.agreement() < 1, "agreement " + c.agreement());
            assertTrue(c.result().perplexity() > c.original().perplexity());
            assertEquals(c.original().flops().savings().executedFlops(), c.result().flops().savings().denseFlops());
            assertTrue(c.result().flops().savings().savedFraction() > 0.05);
            assertTrue(c.medianSpeedup() > 0);
            var bench = new ThroughputBench(pruned, new ThroughputBench.Options(new int[] {1, 4}, 4, 4, 16, 1, 1L, 0))
                    .againstOriginal(original, msg -> { });
            assertEquals(2, bench.decode().size());
            assertEquals(16, bench.prefill().size());
            for (var p : bench.decode()) {
                assertTrue(p.tokensPerSecond() > 0 && p.originalTokensPerSecond() > 0 && p.speedup() > 0, p.toString());
            }
        }
    }

    @Test
    void badInputIsRefusedWithAClearMessageBeforeAnyWork() {
        for (double bad : new double[] {0, 1, -0.1, 1.5, Double.NaN}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> options(bad, Importance.L2));
            assertTrue(e.getMessage().contains("--ratio must be in (0, 1)"), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PruneOptions.parseRange("3-9", 5));
        assertTrue(e.getMessage().contains("outside the model's blocks 0-4"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> PruneOptions.parseRange("x", 5));
        assertArrayEquals(new int[] {1, 3}, PruneOptions.defaultRange(5));
        assertArrayEquals(new int[] {2, 14}, PruneOptions.defaultRange(16));
        assertArrayEquals(new int[] {4, 29}, PruneOptions.defaultRange(32));
        e = assertThrows(IllegalArgumentException.class, () -> prune(dense(), options(0.9, Importance.L2)));
        assertTrue(e.getMessage().contains("no attention head"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Importance.parse("taylor"));
        assertTrue(e.getMessage().contains("element1"), e.getMessage());
        // a block whose attention dominates: 8 whole heads, a 16-channel MLP; 0.56 keeps 4 heads, more than 44% alone
        ModelSpec wide = ModelSpec.uniform(LlamaConfig.llama2c(512, 16, 2, 8, 8, 32, 64, true));
        e = assertThrows(IllegalArgumentException.class, () -> PrunePlan.of(wide, List.of(0), 0.56, 8));
        assertTrue(e.getMessage().contains("no channel"), e.getMessage());
    }
}
