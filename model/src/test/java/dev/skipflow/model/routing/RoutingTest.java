package dev.skipflow.model.routing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.skipflow.model.spec.LlamaConfig;
import dev.skipflow.model.weights.LlamaWeights;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.engine.BatchEngine;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.eval.PerplexityEvaluator;
import dev.skipflow.model.flops.Savings;
import dev.skipflow.model.sampling.SamplingParams;
import java.util.Arrays;
import java.util.List;
import dev.skipflow.model.decoder.AttentionStats;
import dev.skipflow.model.decoder.BlockRouter;
import org.junit.jupiter.api.Test;

/** Routed execution: gather/scatter, keys/values of skipped tokens, and the accounting. */
class RoutingTest {

    static int[] generate(BatchEngine engine, int[] prompt, int n, boolean adaptive) {
        return TestModels.runAlone(engine, new Sequence("x", prompt, SamplingParams.greedy(n)).adaptive(adaptive));
    }

    @Test
    void staticRouterKeepsTheFirstAndTheMostRecentTokens() {
        StaticRouter r = new StaticRouter(new SparsitySchedule(new double[] {0.5, 0.0}));
        assertArrayEquals(new int[] {0, 6, 7, 8, 9}, r.keepPrefill(0, TokenRouter.all(10)));
        assertArrayEquals(TokenRouter.all(10), r.keepPrefill(1, TokenRouter.all(10)));
        assertEquals(null, r.keepDecode(0, new int[] {5, 9}), "a decoding token is the most recent: dense");
    }

    @Test
    void importanceRouterKeepsTheFirstTokenAndTheMostAttendedOnes() {
        ImportanceRouter r = new ImportanceRouter(SparsitySchedule.uniform(0.5, 2));
        int[] positions = TokenRouter.all(6);
        assertArrayEquals(positions, r.keepPrefill(0, positions), "nothing observed yet: the first block runs densely");
        // one head, 6 queries, group 1, 6 keys; query p attends only key 4 (and itself until 4 is visible)
        float[] p = new float[36];
        for (int q = 0; q < 6; q++) {
            p[q * 6 + (q >= 4 ? 4 : q)] = 1f;
        }
        float[] received = new float[6];
        for (int i = 0; i < p.length; i++) {
            received[i % 6] += p[i];
        }
        r.attended(0, new BlockRouter.Candidates(true, positions, positions), new AttentionStats() {
            @Override
            public int heads() {
                return 1;
            }

            @Override
            public int keys() {
                return 6;
            }

            @Override
            public float[] receivedByKey() {
                return received;
            }

            @Override
            public float[] byQueryRow() {
                return p;
            }
        });
        // key 4 got 2 of the 2 queries that could see it; keys 0-3 got 1 each of 5, 4, 3, 2: keep 0, 4, then 3
        assertArrayEquals(new int[] {0, 3, 4}, r.keepPrefill(1, positions));
    }

    @Test
    void removingABlockForEveryTokenEqualsAModelWithoutThatBlock() {
        LlamaWeights w = TestModels.weights();
        LlamaModel without = new LlamaModel(dropLayer(w, 2), Device.cpu());
        int[] prompt = TestModels.tokenizer().encode("Once upon a time", true);
        try (BatchEngine routed = TestModels.engine(TestModels.model(), 2, 128, new BlockRemoval(5, 2), null);
                BatchEngine reference = TestModels.engine(without, 2, 128, null, null)) {
            int[] expected = generate(reference, prompt, 40, true);
            int compared = TestModels.assertGreedyAgrees(without, prompt, expected, generate(routed, prompt, 40, true),
                    "prefill and decode with block 2 removed");
            assertTrue(compared >= 10, "compared " + compared);
            int[] dense = generate(routed, prompt, 40, false);
            assertTrue(!Arrays.equals(expected, dense), "adaptive=false does not remove the block");
            try (BatchEngine plain = TestModels.engine(2, 128)) {
                assertTrue(TestModels.assertGreedyAgrees(TestModels.model(), prompt, generate(plain, prompt, 40, true),
                        dense, "adaptive=false takes the dense path") >= 10);
            }
        } finally {
            without.close();
        }
    }

    @Test
    void routingPromptsOnlyLeavesDecodingTokensDense() {
        int[] prompt = TestModels.tokenizer().encode("Once upon a time", true);
        try (BatchEngine engine = BatchEngine.builder(TestModels.model()).maxBatch(1).context(128)
                .router(new BlockRemoval(5, 2)).routeDecode(false).stopTokens(java.util.Set.of()).build()) {
            Sequence s = new Sequence("x", prompt, SamplingParams.greedy(20));
            TestModels.runAlone(engine, s);
            assertEquals(prompt.length, s.account().savings().tokenBlocksSkipped(), "block 2 for the prompt's tokens only");
            assertEquals((prompt.length + 19L) * 5, s.account().savings().tokenBlocksTotal());
        }
    }

    @Test
    void keysLeftInAReusedSlotByAnEarlierSequenceAreNeverAttended() {
        // Sequence B skips prompt tokens under the static router; if stale keys of sequence A in the same slot
        // leaked into B's attention, B would differ from B run on a fresh engine.
        SparsitySchedule s = SparsitySchedule.uniform(0.4, 5);
        int[] a = TestModels.tokenizer().encode("Lily and Tom went to the park and played with a big red ball", true);
        int[] b = TestModels.tokenizer().encode("One day, a girl named Sue went to see her friend Ben", true);
        int[] fresh;
        try (BatchEngine engine = TestModels.engine(TestModels.model(), 1, 128, new StaticRouter(s), null)) {
            fresh = generate(engine, b, 30, true);
        }
        try (BatchEngine engine = TestModels.engine(TestModels.model(), 1, 128, new StaticRouter(s), null)) {
            generate(engine, a, 60, false); // fills slot 0 densely
            assertArrayEquals(fresh, generate(engine, b, 30, true), "the same engine shapes and path: exact");
        }
    }

    @Test
    void keepingEveryTokenIsExactlyDenseAndSkippingIsChargedForWhatRan() {
        var docs = Documents.read(TestModels.shared().resolve("data/tinystories-valid-sample.txt"),
                TestModels.tokenizer(), 64, 4);
        var eval = new PerplexityEvaluator(TestModels.model());
        var all = eval.compare(docs, new StaticRouter(SparsitySchedule.uniform(0, 5)), i -> { });
        assertEquals(all.dense().nll(), all.routed().nll(), 1e-6 * all.dense().nll());
        assertEquals(1.0, all.agreement());

        var routed = eval.compare(docs, new RandomRouter(SparsitySchedule.uniform(0.25, 5), 1), i -> { });
        Savings sv = routed.routed().flops().savings();
        assertEquals(4L * 64 * 5, sv.tokenBlocksTotal());
        assertEquals(4L * 5 * 16, sv.tokenBlocksSkipped(), "25% of 64 rows in each of 5 blocks of 4 documents");
        assertEquals(routed.dense().flops().denseFlops(), sv.denseFlops(), "same dense reference");
        assertTrue(sv.savedFraction() > 0.2 && sv.savedFraction() < 0.3, "saved " + sv.savedFraction());
        assertTrue(routed.agreement() < 1.0 && routed.agreement() > 0.2, "agreement " + routed.agreement());
    }

    @Test
    void skipOracleTriesEveryTokenBlockOnce() {
        int[] doc = TestModels.tokenizer().encode("Once upon a time there was a dog", true);
        var r = dev.skipflow.model.eval.SkipOracle.measure(TestModels.model(), List.of(doc), i -> { });
        long free = 0;
        for (int l = 0; l < 5; l++) {
            assertEquals(doc.length, r.tried()[l]);
            free += r.free()[l];
        }
        assertTrue(free > 0 && free < 5L * doc.length, "some single skips change a top-1, some do not: " + free);
        assertEquals(free / (5.0 * doc.length), r.freeFraction(), 1e-12);
    }

    @Test
    void exitOracleCountsEveryTokenOnceAndProbingOnlyTheLastBlockSavesNothing() {
        var docs = Documents.read(TestModels.shared().resolve("data/tinystories-valid-sample.txt"),
                TestModels.tokenizer(), 48, 2);
        var r = dev.skipflow.model.eval.ExitOracle.measure(TestModels.model(), docs, i -> { });
        assertEquals(96, r.tokens());
        assertEquals(1.0, Arrays.stream(r.settledShare()).sum(), 1e-9, "each token's top-1 settles at exactly one block");
        assertEquals(5.0, r.meanBlocksRun()[4], 1e-9);
        assertEquals(0.0, r.savedFraction()[4], 1e-9, "one probe at the last block is the dense head");
        for (int k = 0; k < 4; k++) {
            assertTrue(r.meanBlocksRun()[k] <= r.meanBlocksRun()[k + 1] + 1e-9, "probing later never exits earlier");
        }
    }

    static LlamaWeights dropLayer(LlamaWeights w, int layer) {
        LlamaConfig c = w.config();
        LlamaConfig d = new LlamaConfig(c.dim(), c.hiddenDim(), c.nLayers() - 1, c.nHeads(), c.nKvHeads(), c.vocabSize(),
                c.seqLen(), c.sharedClassifier(), c.ropeTheta(), c.normEps(), c.qkvBias());
        return new LlamaWeights(d, w.tokenEmbedding(), drop(w.rmsAtt(), layer), drop(w.wq(), layer), drop(w.wk(), layer),
                drop(w.wv(), layer), drop(w.wo(), layer), null, null, null, drop(w.rmsFfn(), layer), drop(w.w1(), layer),
                drop(w.w2(), layer), drop(w.w3(), layer), w.rmsFinal(), w.classifier(), "without layer " + layer);
    }

    static float[][] drop(float[][] a, int layer) {
        List<float[]> out = new java.util.ArrayList<>(Arrays.asList(a));
        out.remove(layer);
        return out.toArray(new float[0][]);
    }

    @Test
    void theRandomBaselineSkipsItsScheduleShareOfADecodeStepsTokens() {
        RandomRouter random = new RandomRouter(new SparsitySchedule(new double[] {0, 0.5, 0.25, 0.5, 0}), 5);
        int[] positions = {9, 14, 3, 30, 7, 12, 5, 21};
        int[] kept = new int[5];
        boolean differs = false;
        boolean[] first = null;
        for (int step = 0; step < 4; step++) {
            for (int l = 0; l < 5; l++) {
                boolean[] keep = random.keepDecode(l, positions);
                int k = 0;
                for (boolean b : keep) {
                    k += b ? 1 : 0;
                }
                kept[l] = k;
                if (l == 1) {
                    differs |= first != null && !java.util.Arrays.equals(first, keep);
                    first = keep;
                }
            }
            assertArrayEquals(new int[] {8, 4, 6, 4, 8}, kept, "rows kept per block");
        }
        assertTrue(differs, "a different random subset each step");
    }
}
