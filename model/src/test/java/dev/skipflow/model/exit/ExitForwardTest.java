package dev.skipflow.model.exit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.skipflow.model.ScalarLlama;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.engine.BatchEngine;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.decoder.TokenBatch;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.eval.PerplexityEvaluator;
import dev.skipflow.model.eval.PerplexityEvaluator.Variant;
import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.flops.FlopCounter;
import dev.skipflow.model.flops.Savings;
import dev.skipflow.model.routing.SparsitySchedule;
import dev.skipflow.model.routing.StaticRouter;
import dev.skipflow.model.sampling.SamplingParams;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Early exit inside the forward pass: outputs, key/value propagation and what is charged, on stories260K. */
class ExitForwardTest {

    static final int LAYERS = 5;

    static List<int[]> validDocs(int maxLen, int n) {
        return Documents.read(TestModels.shared().resolve("data/tinystories-valid-sample.txt"), TestModels.tokenizer(),
                maxLen, n);
    }

    /** What a teacher-forced pass gave: each position's output logits and blocks run. */
    record Pass(float[][] logits, int[] layersRun) {}

    /** Teacher-forced pass of one document with an exit classifier; rows in {@code mayExit} (null = all) may stop. */
    static Pass run(int[] doc, ExitClassifier exit, boolean[] mayExit, FlopAccount account) {
        LlamaModel model = TestModels.model();
        int n = doc.length;
        int[] written = new int[LAYERS];
        List<Forward.Row> rows = new ArrayList<>();
        for (int p = 0; p < n; p++) {
            rows.add(new Forward.Row(0, p, doc[p], account, written, false, mayExit == null || mayExit[p], true));
        }
        try (KvCache cache = new KvCache(model, 1, n); NDManager step = model.newStepManager()) {
            Forward.Output out = Forward.run(model, cache, step, true, rows, new Forward.Plan(null, exit, null));
            float[][] logits = new float[n][];
            for (int p = 0; p < n; p++) {
                logits[p] = out.logits(p);
            }
            return new Pass(logits, out.layersRun());
        }
    }

    /** One probe's cost: the LM head and the classifier's decision. */
    static long probe(FlopCounter c, ExitClassifier exit) {
        return c.head() + exit.decisionFlops(c.vocabSize());
    }

    @Test
    void aClassifierThatNeverAcceptsGivesTheDenseOutputAndPaysForItsProbes() {
        var docs = validDocs(64, 3);
        var side = new PerplexityEvaluator(TestModels.model())
                .compareAll(docs, List.of(new Variant("never", null, ExitClassifier.never(LAYERS))), i -> { });
        var dense = side.dense();
        var never = side.variants().get(0);
        assertEquals(dense.nll(), never.result().nll(), 1e-6 * dense.nll(), "the dense logits");
        assertEquals(1.0, never.agreement());
        long tokens = docs.stream().mapToLong(d -> d.length).sum();
        FlopCounter c = TestModels.model().flops();
        Savings s = never.result().flops().savings();
        assertEquals(dense.flops().denseFlops(), s.denseFlops());
        assertEquals(dense.flops().executedFlops() + tokens * 4 * probe(c, ExitClassifier.never(LAYERS)), s.executedFlops(),
                "four probes per token");
        assertEquals(0, s.earlyExitTokens());
        assertEquals(5.0, s.meanExitLayer(), 1e-12);
        assertTrue(s.savedFraction() < 0);

        int[] prompt = TestModels.tokenizer().encode("Once upon a time", true);
        try (BatchEngine plain = TestModels.engine(2, 128);
                BatchEngine probing = TestModels.engine(TestModels.model(), 2, 128, null, ExitClassifier.never(LAYERS))) {
            int[] expected = TestModels.generate(plain, prompt, 40, true);
            TestModels.assertGreedyAgrees(TestModels.model(), prompt, expected, TestModels.generate(probing, prompt, 40, true),
                    "probing that never exits");
        }
    }

    @Test
    void aClassifierThatAlwaysAcceptsAtABlockOutputsThatProbeAndIsChargedForItAndThePropagation() {
        LlamaModel model = TestModels.model();
        int[] doc = validDocs(40, 1).get(0);
        int n = doc.length;
        int v = model.spec().vocabSize();
        FlopCounter c = model.flops();
        for (int l = 0; l < LAYERS - 1; l++) {
            float[] probe; // every position through blocks 0..l, then the final norm and head
            try (KvCache cache = new KvCache(model, 1, n); NDManager step = model.newStepManager()) {
                TokenBatch batch = TokenBatch.prefill(model, step, 0, 0, n);
                NDArray x = model.embed(batch, doc);
                for (int k = 0; k <= l; k++) {
                    x = model.block(k).forward(x, batch, cache);
                }
                probe = model.logits(x).toFloatArray();
            }
            FlopAccount account = new FlopAccount();
            ExitClassifier always = ExitClassifier.always(LAYERS, l);
            var r = run(doc, always, null, account);
            long dense = 0;
            long executed = 0;
            for (int p = 0; p < n; p++) {
                assertArrayEquals(Arrays.copyOfRange(probe, p * v, (p + 1) * v), r.logits()[p], 1e-4f, "position " + p);
                assertEquals(l + 1, r.layersRun()[p]);
                dense += c.denseAllBlocks(p) + c.denseHead();
                executed += c.blocksThrough(l, p) + c.kvProjectionsAfter(l) + probe(c, always);
            }
            Savings s = account.savings();
            assertEquals(dense, s.denseFlops());
            assertEquals(executed, s.executedFlops(), "blocks run, k/v propagation and one probe per token");
            assertEquals(n, s.earlyExitTokens());
            assertEquals(l + 1, s.meanExitLayer(), 1e-12);
            assertEquals(0, s.tokenBlocksSkipped(), "an exit is not a routed skip");
        }
    }

    /** A classifier that accepts a probe after block {@code at} only, whatever it measured. */
    static ExitClassifier acceptsAfter(int at, int first, int candidates) {
        float[] w = new float[ExitClassifier.featureCount(LAYERS)];
        w[ExitClassifier.BLOCKS + at] = 1f;
        return new ExitClassifier(LAYERS, w, 0f, 0.5, first, 1, true, candidates);
    }

    @Test
    void candidateProbesScoreTheHeadsRowsForTheFirstProbesBestTokensAndAnExitThereGetsTheWholeHead() {
        LlamaModel model = TestModels.model();
        int[] doc = validDocs(40, 1).get(0);
        int n = doc.length;
        FlopCounter c = model.flops();
        int v = model.spec().vocabSize();
        int k = 8;
        // probes after blocks 1 (whole head), 2 and 3 (candidates); accepted after block 3: the output is block 3's
        // whole head, as a classifier that accepts its first probe there gives
        var expected = run(doc, ExitClassifier.always(LAYERS, 3), null, new FlopAccount());
        FlopAccount account = new FlopAccount();
        ExitClassifier cheap = acceptsAfter(3, 1, k);
        var r = run(doc, cheap, null, account);
        long executed = 0;
        for (int p = 0; p < n; p++) {
            assertArrayEquals(expected.logits()[p], r.logits()[p], 1e-4f, "position " + p);
            assertEquals(4, r.layersRun()[p]);
            executed += c.blocksThrough(3, p) + c.kvProjectionsAfter(3)
                    + c.head() + cheap.decisionFlops(v) // the first probe, whole
                    + 2 * (c.candidateHead(k) + cheap.decisionFlops(k)) // two candidate probes
                    + c.head(); // the output head at the exit
        }
        assertEquals(executed, account.savings().executedFlops());
        assertTrue(c.candidateHead(k) * 10 < c.head(), "a candidate probe costs a fraction of the head");
    }

    @Test
    void theHeadsRowsForChosenTokensEqualThoseEntriesOfTheWholeHead() {
        LlamaModel model = TestModels.model();
        int[] doc = validDocs(16, 1).get(0);
        int n = doc.length;
        int v = model.spec().vocabSize();
        try (KvCache cache = new KvCache(model, 1, n); NDManager step = model.newStepManager()) {
            TokenBatch batch = TokenBatch.prefill(model, step, 0, 0, n);
            NDArray x = model.block(0).forward(model.embed(batch, doc), batch, cache);
            float[] whole = model.logits(x).toFloatArray();
            int[][] ids = new int[n][];
            java.util.SplittableRandom rnd = new java.util.SplittableRandom(3);
            for (int r = 0; r < n; r++) {
                ids[r] = rnd.ints(5, 0, v).toArray();
            }
            float[] some = model.logitsFor(x, ids).toFloatArray();
            for (int r = 0; r < n; r++) {
                for (int j = 0; j < 5; j++) {
                    assertEquals(whole[r * v + ids[r][j]], some[r * 5 + j], 1e-4f, "row " + r + " token " + ids[r][j]);
                }
            }
        }
    }

    @Test
    void aStreakWeightedClassifierStopsATokenOnlyOnceItsTopOneRepeated() {
        // weight only on "streak >= 2": nobody may stop at its first probe; those that stop had the same top-1 twice
        float[] w = new float[ExitClassifier.featureCount(LAYERS)];
        w[2] = 1f;
        ExitClassifier streak = new ExitClassifier(LAYERS, w, 0f, 0.5, 1, 1, true, 0);
        int[] doc = validDocs(48, 1).get(0);
        var r = run(doc, streak, null, new FlopAccount());
        int stopped = 0;
        for (int p = 0; p < doc.length; p++) {
            assertTrue(r.layersRun()[p] >= 3, "position " + p + " stopped after " + r.layersRun()[p] + " blocks");
            stopped += r.layersRun()[p] < LAYERS ? 1 : 0;
        }
        assertTrue(stopped > 0, "some top-1 repeats between blocks 1 and 3");
    }

    @Test
    void laterTokensAttendToKeysAndValuesPropagatedFromAnExitedTokensHiddenState() {
        // positions 2, 5 and 6 stop after block 1; the scalar reference computes their keys/values in blocks 2-4
        // from their block-1 hidden state, loop by loop, and every later position attends to them
        int[] doc = validDocs(24, 1).get(0);
        int n = doc.length;
        int exitBlock = 1;
        boolean[] mayExit = new boolean[n];
        mayExit[2] = mayExit[5] = mayExit[6] = true;
        var r = run(doc, ExitClassifier.always(LAYERS, exitBlock), mayExit, new FlopAccount());
        ScalarLlama ref = new ScalarLlama(TestModels.weights());
        float maxDiff = 0;
        boolean laterChanged = false;
        ScalarLlama dense = new ScalarLlama(TestModels.weights());
        for (int p = 0; p < n; p++) {
            float[] expected = ref.forward(doc[p], p, mayExit[p] ? exitBlock : -1);
            float[] plain = dense.forward(doc[p], p);
            for (int i = 0; i < expected.length; i++) {
                maxDiff = Math.max(maxDiff, Math.abs(expected[i] - r.logits()[p][i]));
                laterChanged |= p > 6 && Math.abs(plain[i] - expected[i]) > 1e-3;
            }
            assertEquals(mayExit[p] ? exitBlock + 1 : LAYERS, r.layersRun()[p]);
        }
        assertTrue(maxDiff < 1e-3, "max |logit difference| to the scalar reference " + maxDiff);
        assertTrue(laterChanged, "the propagated keys/values differ from dense ones, so later tokens see them");
    }

    @Test
    void greedyDecodeWithExitsEqualsTheScalarReferenceExitingTheSameTokens() {
        // every generated token and the last prompt position stop after block 2
        int[] prompt = TestModels.tokenizer().encode("Lily and Tom went to the park", true);
        int steps = 30;
        int[] got;
        Sequence s = new Sequence("x", prompt, SamplingParams.greedy(steps));
        try (BatchEngine engine = BatchEngine.builder(TestModels.model()).maxBatch(2).context(128)
                .exit(ExitClassifier.always(LAYERS, 2)).stopTokens(java.util.Set.of()).build()) {
            got = TestModels.runAlone(engine, s);
        }
        // the reference exits the same tokens; its tokens are compared while its top-1 margin is clear of rounding
        ScalarLlama ref = new ScalarLlama(TestModels.weights());
        int token = prompt[0];
        int v = TestModels.model().spec().vocabSize();
        int compared = 0;
        for (int pos = 0, k = 0; k < steps; pos++) {
            boolean output = pos >= prompt.length - 1;
            float[] logits = ref.forward(token, pos, output ? 2 : -1);
            token = output ? dev.skipflow.model.sampling.Sampler.argmax(logits) : prompt[pos + 1];
            if (output) {
                if (TestModels.margin(logits, 0, v) < TestModels.LOGIT_TOLERANCE) {
                    break;
                }
                assertEquals(token, got[k++], "token " + (k - 1));
                compared++;
            }
        }
        assertTrue(compared >= 10, "compared " + compared + " tokens");
        Savings sv = s.account().savings();
        assertEquals(steps, sv.earlyExitTokens());
        assertEquals(3.0, sv.meanExitLayer(), 1e-12);
        assertTrue(sv.savedFraction() > 0.2, "three of five blocks and no head: saved " + sv.savedFraction());
    }

    @Test
    void routerAndExitShareOnePassAndOneAccount() {
        var docs = validDocs(64, 3);
        StaticRouter router = new StaticRouter(SparsitySchedule.uniform(0.3, LAYERS));
        var side = new PerplexityEvaluator(TestModels.model()).compareAll(docs, List.of(
                new Variant("router", router, null),
                new Variant("router+never", router, ExitClassifier.never(LAYERS)),
                new Variant("router+always@3", router, ExitClassifier.always(LAYERS, 3))), i -> { });
        long tokens = docs.stream().mapToLong(d -> d.length).sum();
        FlopCounter c = TestModels.model().flops();
        Savings routed = side.variants().get(0).result().flops().savings();
        Savings never = side.variants().get(1).result().flops().savings();
        Savings both = side.variants().get(2).result().flops().savings();
        double nll = side.variants().get(0).result().nll();
        assertEquals(nll, side.variants().get(1).result().nll(), 1e-6 * nll);
        assertEquals(routed.executedFlops() + tokens * 4 * probe(c, ExitClassifier.never(LAYERS)), never.executedFlops());
        assertEquals(routed.tokenBlocksSkipped(), never.tokenBlocksSkipped());
        assertTrue(both.tokenBlocksSkipped() > 0 && both.earlyExitTokens() == tokens, "skips and exits in one account");
        assertTrue(both.tokenBlocksSkipped() < routed.tokenBlocksSkipped(), "exited tokens are not routed in block 4");
        assertEquals(4.0, both.meanExitLayer(), 1e-12);
    }
}
