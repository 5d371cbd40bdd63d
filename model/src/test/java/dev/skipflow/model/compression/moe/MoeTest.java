package dev.skipflow.model.compression.moe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.decoder.BlockHook;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.engine.EngineThreads;
import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.flops.FlopCounter;
import dev.skipflow.model.io.CompressedCheckpoint;
import dev.skipflow.model.io.ModelLoader;
import dev.skipflow.model.nn.GatedMlp;
import dev.skipflow.model.nn.Mlp;
import dev.skipflow.model.nn.MoeMlp;
import dev.skipflow.model.training.RouterRecipe;
import dev.skipflow.model.weights.MlpWeights;
import dev.skipflow.model.weights.ModelWeights;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ToMoE on the real stories260K (5 blocks, MLP 172): straight-through gradients of the hard Gumbel masks and router,
 * the hypernetwork's gradients against finite differences, the loss terms' values, conversion keeping exactly the
 * channels some expert uses, the served mixture equal per token to the dense model with that token's expert mask,
 * determinism, a checkpoint round trip, expert token counts, and clear messages for bad input.
 */
class MoeTest {

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
        return Documents.read(TestModels.shared().resolve("data/tinystories-train-sample.txt"), TestModels.tokenizer(), 48, 40);
    }

    static final int[] DOC = {1, 403, 407, 261, 378, 359, 312, 264, 259, 301, 262, 281, 266, 370, 275, 262};

    /** Random expert channel sets (each {@code size} of {@code hidden}) and random routers {@code [dim, E]}. */
    static int[][][] randomExperts(ModelWeights w, int experts, int size, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int[][][] out = new int[w.spec().nLayers()][experts][];
        for (int l = 0; l < out.length; l++) {
            int h = w.spec().block(l).mlpHidden();
            for (int e = 0; e < experts; e++) {
                double[] s = new double[h];
                for (int c = 0; c < h; c++) {
                    s[c] = rnd.nextDouble();
                }
                Integer[] order = new Integer[h];
                for (int c = 0; c < h; c++) {
                    order[c] = c;
                }
                Arrays.sort(order, (a, b) -> Double.compare(s[b], s[a]));
                int[] pick = new int[size];
                for (int i = 0; i < size; i++) {
                    pick[i] = order[i];
                }
                Arrays.sort(pick);
                out[l][e] = pick;
            }
        }
        return out;
    }

    static float[][] randomRouters(ModelWeights w, int experts, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[][] r = new float[w.spec().nLayers()][];
        for (int l = 0; l < r.length; l++) {
            r[l] = Hypernetwork.uniform(rnd, w.spec().dim() * experts, 1.0);
        }
        return r;
    }

    @Test
    void hardGumbelSigmoidIsBinaryForwardAndSoftBackward() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            float[] values = Hypernetwork.uniform(new SplittableRandom(1), 24, 3.0);
            NDArray logits = m.create(values, new Shape(3, 8));
            NDArray weights = m.create(Hypernetwork.uniform(new SplittableRandom(2), 24, 1.0), new Shape(3, 8));
            logits.setRequiresGradient(true);
            float[] hardValues;
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray mask = ToMoe.hardSigmoid(m, logits, 3f, 0.4f, new SplittableRandom(7));
                hardValues = mask.toFloatArray();
                gc.backward(mask.mul(weights).sum());
            }
            float[] st = logits.getGradient().toFloatArray();
            // the soft sample with the same noise: its gradient is what straight through must pass
            SplittableRandom noise = new SplittableRandom(7);
            float[] expected = new float[24];
            float[] w = weights.toFloatArray();
            for (int i = 0; i < 24; i++) {
                double z = (values[i] + Hypernetwork.gumbel(noise) + 3) / 0.4;
                double s = 1 / (1 + Math.exp(-z));
                assertEquals(s > 0.5 ? 1f : 0f, hardValues[i], 1e-6, "forward is the hard 0/1 mask");
                expected[i] = (float) (s * (1 - s) / 0.4 * w[i]);
            }
            assertArrayEquals(expected, st, 1e-4f);
        }
    }

    @Test
    void routerIsOneHotForwardWithAStraightThroughGradient() {
        ModelWeights w = dense();
        try (LlamaModel model = new LlamaModel(w, Device.cpu()); NDManager m = NDManager.newBaseManager(Device.cpu())) {
            int dim = w.spec().dim();
            int h = w.spec().block(0).mlpHidden();
            NDArray router = m.create(Hypernetwork.uniform(new SplittableRandom(3), dim * 4, 0.5), new Shape(dim, 4));
            router.setRequiresGradient(true);
            float[] mk = new float[4 * h];
            SplittableRandom r = new SplittableRandom(4);
            for (int i = 0; i < mk.length; i++) {
                mk[i] = r.nextBoolean() ? 1f : 0f;
            }
            NDArray masks = m.create(mk, new Shape(4, h));
            NDArray x = m.create(Hypernetwork.uniform(new SplittableRandom(5), 6 * dim, 1.0), new Shape(6, dim));
            MaskedMlp mlp = new MaskedMlp((GatedMlp) model.block(0).mlp(), router, masks, 0.4f, new SplittableRandom(9));
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray out = mlp.forward(x, null);
                float[] hard = mlp.hard().toFloatArray();
                for (int row = 0; row < 6; row++) {
                    float sum = 0;
                    for (int e = 0; e < 4; e++) {
                        assertTrue(hard[row * 4 + e] == 0f || hard[row * 4 + e] == 1f);
                        sum += hard[row * 4 + e];
                    }
                    assertEquals(1f, sum, 0f, "one expert per token");
                }
                gc.backward(out.square().sum());
            }
            NDArray g = router.getGradient();
            float norm = g.square().sum().getFloat();
            assertTrue(Float.isFinite(norm) && norm > 0, "the router learns through the hard choice: " + norm);
        }
    }

    @Test
    void hypernetworkGradientsMatchFiniteDifferences() {
        int[] hidden = {6, 5, 7};
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Hypernetwork hn = new Hypernetwork(m, hidden, 3, new SplittableRandom(11));
            List<float[]> weights = new ArrayList<>();
            SplittableRandom rnd = new SplittableRandom(12);
            for (int h : hidden) {
                weights.add(Hypernetwork.uniform(rnd, 3 * h, 1.0));
            }
            try (NDManager step = m.newSubManager(); GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                gc.backward(objective(hn, step, weights, hidden));
            }
            SplittableRandom pick = new SplittableRandom(13);
            int checked = 0;
            for (NDArray p : hn.parameters()) {
                float[] grad = p.getGradient().toFloatArray();
                float[] base = p.toFloatArray();
                for (int k = 0; k < 2; k++) {
                    int i = pick.nextInt(base.length);
                    double eps = 1e-2;
                    double up = perturbed(hn, m, p, base, i, eps, weights, hidden);
                    double down = perturbed(hn, m, p, base, i, -eps, weights, hidden);
                    double fd = (up - down) / (2 * eps);
                    assertEquals(fd, grad[i], 2e-3 + 0.03 * Math.abs(fd), "parameter entry " + i + " of " + p.getShape());
                    checked++;
                }
            }
            assertTrue(checked >= 2 * (8 + 3 * 3));
        }
    }

    private static NDArray objective(Hypernetwork hn, NDManager step, List<float[]> weights, int[] hidden) {
        List<NDArray> logits = hn.logits(step);
        NDArray total = step.zeros(new Shape());
        for (int l = 0; l < hidden.length; l++) {
            total = total.add(logits.get(l).mul(step.create(weights.get(l), new Shape(3, hidden[l]))).sum());
        }
        return total;
    }

    private static double perturbed(Hypernetwork hn, NDManager m, NDArray p, float[] base, int i, double eps,
            List<float[]> weights, int[] hidden) {
        float[] v = base.clone();
        v[i] += (float) eps;
        p.set(v);
        try (NDManager step = m.newSubManager()) {
            return objective(hn, step, weights, hidden).getFloat();
        } finally {
            p.set(base);
        }
    }

    @Test
    void lossTermsHaveTheirPublishedValues() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            assertEquals(Math.log(0.5 / 0.3), ToMoe.activeTerm(m.create(0.3f), 0.5).getFloat(), 1e-5);
            assertEquals(Math.log(0.8 / 0.5), ToMoe.activeTerm(m.create(0.8f), 0.5).getFloat(), 1e-5);
            NDArray cover = m.create(new float[] {1, 0, 0, 0, 1, 1}, new Shape(2, 3));
            assertEquals(0, ToMoe.coverage(cover).getFloat(), 1e-6, "every channel in some expert");
            NDArray half = m.create(new float[] {1, 0, 0, 0, 1, 0}, new Shape(2, 3));
            assertEquals(Math.log(1.001 / (2 / 3.0 + 0.001)), ToMoe.coverage(half).getFloat(), 1e-5);
            NDArray hard = m.create(new float[] {1, 0, 0, 1}, new Shape(2, 2));
            NDArray uniform = m.create(new float[] {0.5f, 0.5f, 0.5f, 0.5f}, new Shape(2, 2));
            assertEquals(1, ToMoe.balance(hard, uniform).getFloat(), 1e-6, "balanced load: E * sum(f P) = 1");
            NDArray skewed = m.create(new float[] {1, 0, 1, 0}, new Shape(2, 2));
            NDArray sure = m.create(new float[] {1, 0, 1, 0}, new Shape(2, 2));
            assertEquals(2, ToMoe.balance(skewed, sure).getFloat(), 1e-6, "all to one expert: E");
            NDArray t = m.create(new float[] {0.7f, 0.3f}, new Shape(1, 2)).log();
            NDArray s = m.create(new float[] {0.4f, 0.6f}, new Shape(1, 2)).log();
            assertEquals(0.7 * Math.log(0.7 / 0.4) + 0.3 * Math.log(0.3 / 0.6), ToMoe.kl(t, s).getFloat(), 1e-5);
            assertEquals(0, ToMoe.kl(t, t).getFloat(), 1e-7);
        }
    }

    @Test
    void conversionKeepsExactlyTheChannelsSomeExpertUses() {
        ModelWeights w = dense();
        int[][][] experts = randomExperts(w, 4, 40, 21);
        ModelWeights moe = ToMoe.convert(w, experts, randomRouters(w, 4, 22));
        for (int l = 0; l < w.spec().nLayers(); l++) {
            MlpWeights.Gated g = (MlpWeights.Gated) w.blocks().get(l).mlp();
            MlpWeights.Moe c = (MlpWeights.Moe) moe.blocks().get(l).mlp();
            java.util.TreeSet<Integer> union = new java.util.TreeSet<>();
            for (int[] e : experts[l]) {
                for (int ch : e) {
                    union.add(ch);
                }
            }
            assertEquals(union.size(), c.hidden(), "block " + l + " keeps the union of its experts");
            assertEquals(union.size(), moe.spec().block(l).mlpHidden());
            assertEquals(4, moe.spec().block(l).experts());
            int[] kept = union.stream().mapToInt(Integer::intValue).toArray();
            float[] gate = g.gate().toDense();
            float[] cGate = c.channels().gate().toDense();
            int dim = w.spec().dim();
            for (int e = 0; e < 4; e++) {
                assertEquals(experts[l][e].length, c.experts()[e].length);
                for (int i = 0; i < c.experts()[e].length; i++) {
                    int original = kept[c.experts()[e][i]];
                    assertEquals(experts[l][e][i], original, "expert " + e + " maps back to its channels");
                    assertArrayEquals(Arrays.copyOfRange(gate, original * dim, (original + 1) * dim),
                            Arrays.copyOfRange(cGate, c.experts()[e][i] * dim, (c.experts()[e][i] + 1) * dim));
                }
            }
        }
        assertTrue(moe.parameterCount() < w.parameterCount());
    }

    /** The served mixture's logits, prefill and token-by-token decode, against the dense model with per-token masks. */
    @Test
    void servedMixtureEqualsTheDenseModelMaskedPerTokenByItsExpert() {
        ModelWeights w = dense();
        assertServedEqualsMasked(w, randomExperts(w, 4, 60, 31), randomRouters(w, 4, 32), false);
    }

    /**
     * Experts that share a core (30 channels common to all, 30 of their own; one expert with none of its own) are
     * served as one shared SwiGLU over every row plus each expert's remainder: the same function.
     */
    @Test
    void servedMixtureWithSharedChannelsEqualsTheMaskedDenseModel() {
        ModelWeights w = dense();
        int experts = 4;
        int[][][] own = randomExperts(w, experts, 60, 41);
        int[][][] sets = new int[5][experts][];
        for (int l = 0; l < 5; l++) {
            java.util.TreeSet<Integer> core = new java.util.TreeSet<>();
            for (int c : own[l][0]) {
                if (core.size() < 30) {
                    core.add(c);
                }
            }
            for (int e = 0; e < experts; e++) {
                java.util.TreeSet<Integer> set = new java.util.TreeSet<>(core);
                if (e > 0) { // expert 0 is the core alone
                    for (int c : own[l][e]) {
                        if (set.size() < 60) {
                            set.add(c);
                        }
                    }
                }
                sets[l][e] = set.stream().mapToInt(Integer::intValue).toArray();
            }
        }
        assertServedEqualsMasked(w, sets, randomRouters(w, experts, 42), true);
    }

    private static void assertServedEqualsMasked(ModelWeights w, int[][][] sets, float[][] routers, boolean shared) {
        int experts = sets[0].length;
        ModelWeights moe = ToMoe.convert(w, sets, routers);
        int n = DOC.length;
        int vocab = w.spec().vocabSize();
        float[] served;
        float[] decoded = new float[n * vocab];
        FlopAccount account = new FlopAccount();
        try (LlamaModel model = new LlamaModel(moe, Device.cpu())) {
            for (int l = 0; l < 5; l++) {
                assertEquals(shared, ((MoeMlp) model.block(l).mlp()).shared() != null, "block " + l + " shared part");
            }
            try (KvCache cache = new KvCache(model, 1, n); NDManager m = model.newStepManager()) {
                served = Forward.run(model, cache, m, true, Forward.prompt(0, 0, DOC, account, new int[5], false, n, 0),
                        Forward.Plan.DENSE).allLogits();
            }
            try (KvCache cache = new KvCache(model, 1, n)) {
                for (int i = 0; i < n; i++) {
                    try (NDManager m = model.newStepManager()) {
                        float[] row = Forward.run(model, cache, m, i == 0,
                                List.of(new Forward.Row(0, i, DOC[i], null, null, false, false, true)), Forward.Plan.DENSE)
                                .allLogits();
                        System.arraycopy(row, 0, decoded, i * vocab, vocab);
                    }
                }
            }
        }
        float[] masked;
        try (LlamaModel model = new LlamaModel(w, Device.cpu()); NDManager m = NDManager.newBaseManager(Device.cpu());
                KvCache cache = new KvCache(model, 1, n)) {
            Mlp[] mlps = new Mlp[5];
            for (int l = 0; l < 5; l++) {
                int h = w.spec().block(l).mlpHidden();
                float[] mask = new float[experts * h];
                for (int e = 0; e < experts; e++) {
                    for (int c : sets[l][e]) {
                        mask[e * h + c] = 1f;
                    }
                }
                mlps[l] = new MaskedMlp((GatedMlp) model.block(l).mlp(), m.create(routers[l], new Shape(w.spec().dim(), experts)),
                        m.create(mask, new Shape(experts, h)), 0.4f, null);
            }
            BlockHook hook = new BlockHook() {
                @Override
                public Mlp mlp(int layer) {
                    return mlps[layer];
                }
            };
            try (NDManager step = model.newStepManager()) {
                masked = Forward.run(model, cache, step, true, Forward.prompt(0, 0, DOC, null, null, false, n, 0),
                        Forward.Plan.hooked(hook)).allLogits();
            }
        }
        assertArrayEquals(masked, served, 1e-4f, "prefill");
        assertArrayEquals(served, decoded, 1e-4f, "decode, token by token");
        long[][] counts = account.savings().experts();
        for (int l = 0; l < 5; l++) {
            assertEquals(n, Arrays.stream(counts[l]).sum(), "every token took one expert in block " + l);
        }
        assertTrue(account.savings().executedFlops() < account.savings().denseFlops());
    }

    @Test
    void trainingRepeatsAndTheCheckpointRoundTrips() throws Exception {
        ModelWeights w = dense();
        MoeOptions o = MoeOptions.defaults(0.5, 4, 6, 4, 32, 2, MoeOptions.Baseline.NONE, 5);
        List<int[]> docs = calibration();
        // One intra-op thread for both runs: with more, a BLAS that adapts its threads to the machine's load may sum
        // in another order, and a hard Gumbel gate flips on the last bit. Even with one thread that was seen twice
        // with other processes beside the suite on 2 cores (one channel of 86 differed), so the two trainings are
        // compared with a tolerance: the same channels up to a few, routers pointing the same way. Inference,
        // below, must be exact.
        int threads = EngineThreads.set(0);
        ToMoe.Result a;
        ToMoe.Result b;
        try {
            EngineThreads.set(1);
            a = ToMoe.run(w, docs, o, Map.of(), Device.cpu(), QUIET);
            b = ToMoe.run(w, docs, o, Map.of(), Device.cpu(), QUIET);
        } finally {
            EngineThreads.set(threads);
        }
        assertTrue(Double.isFinite(a.firstLoss()) && Double.isFinite(a.lastLoss()));
        for (int l = 0; l < 5; l++) {
            assertEquals(86, a.experts()[l][0].length, "round(0.5 * 172) channels per expert");
            for (int e = 0; e < 4; e++) {
                int[] x = a.experts()[l][e];
                java.util.Set<Integer> y = Arrays.stream(b.experts()[l][e]).boxed().collect(java.util.stream.Collectors.toSet());
                long shared = Arrays.stream(x).filter(y::contains).count();
                assertTrue(shared >= x.length - 4, "block " + l + " expert " + e + ": " + shared + " of " + x.length
                        + " channels the same in both runs");
            }
            float[] ra = ((MlpWeights.Moe) a.weights().blocks().get(l).mlp()).router().weight();
            float[] rb = ((MlpWeights.Moe) b.weights().blocks().get(l).mlp()).router().weight();
            double dot = 0;
            double na = 0;
            double nb = 0;
            for (int i = 0; i < ra.length; i++) {
                dot += ra[i] * rb[i];
                na += ra[i] * ra[i];
                nb += rb[i] * rb[i];
            }
            assertTrue(dot / Math.sqrt(na * nb) > 0.99, "block " + l + " router cosine " + dot / Math.sqrt(na * nb));
            long tokens = Arrays.stream(a.load()[l]).sum();
            assertEquals(docs.size() >= 4 ? 4 * 32 : tokens, tokens, "calibration load counts every token");
        }
        Path out = dir.resolve("moe");
        CompressedCheckpoint.write(a.weights(), new CompressedCheckpoint.Provenance("fp", "stories260K", List.of(a.step())), out);
        ModelWeights back = ModelLoader.load(out);
        assertEquals(a.weights().spec(), back.spec());
        float[] first;
        float[] second;
        float[] loaded;
        try (LlamaModel m1 = new LlamaModel(a.weights(), Device.cpu()); LlamaModel m2 = new LlamaModel(back, Device.cpu())) {
            first = logits(m1);
            second = logits(m1);
            loaded = logits(m2);
            assertEquals(FlopCounter.of(w.spec()).denseAllBlocks(10), m2.flops().denseAllBlocks(10),
                    "savings count against the dense original");
        }
        assertArrayEquals(first, second, 0f, "the same prompt gives the same logits");
        assertArrayEquals(first, loaded, 1e-6f);
    }

    private static float[] logits(LlamaModel model) {
        try (KvCache cache = new KvCache(model, 1, DOC.length); NDManager m = model.newStepManager()) {
            return Forward.run(model, cache, m, true, Forward.prompt(0, 0, DOC, null, null, false, DOC.length, 0),
                    Forward.Plan.DENSE).allLogits();
        }
    }

    @Test
    void sharedChannelsAreTheMostImportantAndInEveryExpert() {
        ModelWeights w = dense();
        MoeOptions o = MoeOptions.defaults(0.5, 4, 3, 4, 32, 1, MoeOptions.Baseline.NONE, 5).withShared(0.5);
        List<int[]> docs = calibration();
        ToMoe.Result r = ToMoe.run(w, docs, o, Map.of(), Device.cpu(), QUIET);
        List<int[]> samples = dev.skipflow.model.compression.Calibration.samples(docs, 4, 32, 5);
        double[][] scores = dev.skipflow.model.compression.prune.MlpChannelPruning.channelScores(w, samples, Device.cpu(),
                5, d -> {});
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> perBlock = (List<Map<String, Object>>) r.step().settings().get("perBlock");
        for (int l = 0; l < 5; l++) {
            double[] sc = scores[l];
            int[] best = java.util.stream.IntStream.range(0, sc.length).boxed()
                    .sorted((a, b) -> Double.compare(sc[b], sc[a])).limit(43).mapToInt(Integer::intValue).toArray();
            for (int e = 0; e < 4; e++) {
                assertEquals(86, r.experts()[l][e].length, "round(0.5 * 172) channels per expert");
                java.util.Set<Integer> set = Arrays.stream(r.experts()[l][e]).boxed().collect(java.util.stream.Collectors.toSet());
                for (int c : best) {
                    assertTrue(set.contains(c), "block " + l + " expert " + e + " has shared channel " + c);
                }
            }
            assertEquals(43, perBlock.get(l).get("sharedChannels"));
        }
        assertEquals(0.5, r.step().settings().get("shared"));
        try (LlamaModel model = new LlamaModel(r.weights(), Device.cpu())) {
            assertTrue(((MoeMlp) model.block(0).mlp()).shared() != null, "served with a shared part");
        }
    }

    /** The training's leak guard: arrays left on its long-lived manager step after step fail it; a one-off does not. */
    @Test
    void trainingFailsFastWhenStepsKeepLeavingArrays() {
        try (NDManager longLived = NDManager.newBaseManager(Device.cpu())) {
            int[] seen = {0, 0};
            for (int step = 1; step <= 8; step++) {
                if (step == 4) {
                    longLived.zeros(new Shape(3)); // a one-off
                }
                ToMoe.requireNoGrowth(longLived, seen, step);
            }
            String leak = assertThrows(IllegalStateException.class, () -> {
                for (int step = 9; step <= 20; step++) {
                    longLived.zeros(new Shape(3)); // what the teacher's ops once left every step
                    ToMoe.requireNoGrowth(longLived, seen, step);
                }
            }).getMessage();
            assertTrue(leak.contains("ToMoE training leaks") && leak.contains("the last 3 steps"), leak);
        }
    }

    @Test
    void staticBaselineKeepsTheSameActiveChannels() {
        ModelWeights w = dense();
        MoeOptions o = MoeOptions.defaults(0.7, 8, 0, 3, 32, 1, MoeOptions.Baseline.STATIC, 5);
        ToMoe.Result r = ToMoe.run(w, calibration(), o, Map.of(), Device.cpu(), QUIET);
        for (int l = 0; l < 5; l++) {
            assertEquals(120, r.weights().spec().block(l).mlpHidden(), "round(0.7 * 172)");
            assertTrue(r.weights().blocks().get(l).mlp() instanceof MlpWeights.Gated);
        }
        assertEquals("moe-static", r.step().method());
    }

    @Test
    void badInputIsRefusedWithAReason() {
        String one = assertThrows(IllegalArgumentException.class,
                () -> MoeOptions.defaults(0.5, 1, 10, 4, 32, 1, MoeOptions.Baseline.NONE, 1)).getMessage();
        assertTrue(one.contains("--experts must be at least 2"), one);
        for (double bad : new double[] {0, 1, 1.5, -0.2, Double.NaN}) {
            String m = assertThrows(IllegalArgumentException.class,
                    () -> MoeOptions.defaults(bad, 8, 10, 4, 32, 1, MoeOptions.Baseline.NONE, 1)).getMessage();
            assertTrue(m.contains("--active-ratio must be in (0, 1)"), m);
        }
        for (double bad : new double[] {1, -0.1, Double.NaN}) {
            String m = assertThrows(IllegalArgumentException.class,
                    () -> MoeOptions.defaults(0.5, 8, 10, 4, 32, 1, MoeOptions.Baseline.NONE, 1).withShared(bad)).getMessage();
            assertTrue(m.contains("--shared must be in [0, 1)"), m);
        }
        MoeOptions tiny = MoeOptions.defaults(0.001, 8, 10, 4, 32, 1, MoeOptions.Baseline.NONE, 1);
        String empty = assertThrows(IllegalArgumentException.class, () -> tiny.keptChannels(0, 172)).getMessage();
        assertTrue(empty.contains("empty expert set") && empty.contains("block 0"), empty);
        ModelWeights w = dense();
        int[][][] sets = randomExperts(w, 3, 20, 1);
        sets[2][1] = new int[0];
        String none = assertThrows(IllegalArgumentException.class, () -> ToMoe.convert(w, sets, randomRouters(w, 3, 2)))
                .getMessage();
        assertTrue(none.contains("block 2") && none.contains("expert 1 has an empty channel set"), none);
        ModelWeights moe = ToMoe.convert(w, randomExperts(w, 3, 20, 1), randomRouters(w, 3, 2));
        String again = assertThrows(IllegalArgumentException.class,
                () -> ToMoe.run(moe, calibration(), MoeOptions.defaults(0.5, 4, 1, 2, 32, 1, MoeOptions.Baseline.NONE, 1),
                        Map.of(), Device.cpu(), QUIET)).getMessage();
        assertTrue(again.contains("already a mixture of experts"), again);
    }
}
