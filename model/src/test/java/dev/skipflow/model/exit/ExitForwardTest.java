package dev.skipflow.model.exit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.skipflow.model.ScalarLlama;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.decoder.AdaptiveForward;
import dev.skipflow.model.decoder.BatchEngine;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.decoder.Sequence;
import dev.skipflow.model.decoder.TokenBatch;
import dev.skipflow.model.eval.Documents;
import dev.skipflow.model.eval.PerplexityEvaluator;
import dev.skipflow.model.eval.PerplexityEvaluator.Variant;
import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.flops.FlopCounter;
import dev.skipflow.model.flops.Savings;
import dev.skipflow.model.routing.SparsitySchedule;
import dev.skipflow.model.routing.StaticRouter;
import dev.skipflow.model.sampling.SamplingParams;
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

    /** Teacher-forced pass of one document with an exit classifier; rows in {@code mayExit} may stop. */
    static AdaptiveForward.Result run(int[] doc, ExitClassifier exit, boolean[] mayExit, FlopAccount account) {
        LlamaModel model = TestModels.model();
        int n = doc.length;
        try (KvCache cache = new KvCache(model, 1, n); NDManager step = model.newStepManager()) {
            TokenBatch batch = TokenBatch.prefill(model, step, 0, 0, n);
            FlopAccount[] accounts = new FlopAccount[n];
            int[][] written = new int[n][];
            Arrays.fill(accounts, account);
            Arrays.fill(written, new int[LAYERS]);
            return AdaptiveForward.run(model, cache, batch, model.embed(batch, doc), null, null, exit, mayExit,
                    AdaptiveForward.all(n), new FlopCounter(model.config()), accounts, written);
        }
    }

    static int[] generate(BatchEngine engine, int[] prompt, int n, boolean adaptive) {
        return TestModels.runAlone(engine, new Sequence("x", prompt, SamplingParams.greedy(n)).adaptive(adaptive));
    }

    @Test
    void aClassifierThatNeverAcceptsGivesTheDenseOutputAndPaysForItsProbes() {
        var docs = validDocs(64, 3);
        var side = new PerplexityEvaluator(TestModels.model())
                .compareAll(docs, List.of(new Variant("never", null, ExitClassifier.never(LAYERS))), i -> { });
        var dense = side.dense();
        var never = side.variants().get(0);
        assertEquals(dense.nll(), never.result().nll(), 0.0, "identical logits");
        assertEquals(1.0, never.agreement());
        long tokens = docs.stream().mapToLong(d -> d.length).sum();
        FlopCounter c = new FlopCounter(TestModels.model().config());
        Savings s = never.result().flops().savings();
        assertEquals(dense.flops().denseFlops(), s.denseFlops());
        assertEquals(dense.flops().executedFlops() + tokens * 4 * c.probe(), s.executedFlops(), "four probes per token");
        assertEquals(0, s.earlyExitTokens());
        assertEquals(5.0, s.meanExitLayer(), 1e-12);
        assertTrue(s.savedFraction() < 0);

        int[] prompt = TestModels.tokenizer().encode("Once upon a time", true);
        try (BatchEngine plain = new BatchEngine(TestModels.model(), 2, 128);
                BatchEngine probing = new BatchEngine(TestModels.model(), 2, 128, null, ExitClassifier.never(LAYERS))) {
            assertArrayEquals(generate(plain, prompt, 40, true), generate(probing, prompt, 40, true));
        }
    }

    @Test
    void aClassifierThatAlwaysAcceptsAtABlockOutputsThatProbeAndIsChargedForItAndThePropagation() {
        LlamaModel model = TestModels.model();
        int[] doc = validDocs(40, 1).get(0);
        int n = doc.length;
        int v = model.config().vocabSize();
        FlopCounter c = new FlopCounter(model.config());
        for (int l = 0; l < LAYERS - 1; l++) {
            float[] probe; // every position through blocks 0..l, then the final norm and head
            try (KvCache cache = new KvCache(model, 1, n); NDManager step = model.newStepManager()) {
                TokenBatch batch = TokenBatch.prefill(model, step, 0, 0, n);
                NDArray x = model.embed(batch, doc);
                for (int k = 0; k <= l; k++) {
                    x = model.block(k, x, batch, cache);
                }
                probe = model.logits(x).toFloatArray();
            }
            FlopAccount account = new FlopAccount();
            var r = run(doc, ExitClassifier.always(LAYERS, l), AdaptiveForward.all(n), account);
            long dense = 0;
            long executed = 0;
            for (int p = 0; p < n; p++) {
                assertArrayEquals(Arrays.copyOfRange(probe, p * v, (p + 1) * v), r.logits()[p], 0f, "position " + p);
                assertEquals(l + 1, r.layersRun()[p]);
                dense += LAYERS * c.block(p) + c.head();
                executed += (l + 1) * c.block(p) + (LAYERS - 1 - l) * c.kvProjection() + c.probe();
            }
            Savings s = account.savings();
            assertEquals(dense, s.denseFlops());
            assertEquals(executed, s.executedFlops(), "blocks run, k/v propagation and one probe per token");
            assertEquals(n, s.earlyExitTokens());
            assertEquals(l + 1, s.meanExitLayer(), 1e-12);
            assertEquals(0, s.tokenBlocksSkipped(), "an exit is not a routed skip");
        }
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
        try (BatchEngine engine = new BatchEngine(TestModels.model(), 2, 128, null, ExitClassifier.always(LAYERS, 2))) {
            engine.stopOnEos(false);
            engine.submit(s);
            while (!s.isFinished()) {
                engine.step();
            }
            got = s.generated();
        }
        ScalarLlama ref = new ScalarLlama(TestModels.weights());
        int[] expected = new int[steps];
        int token = prompt[0];
        for (int pos = 0, k = 0; k < steps; pos++) {
            boolean output = pos >= prompt.length - 1;
            float[] logits = ref.forward(token, pos, output ? 2 : -1);
            token = output ? dev.skipflow.model.sampling.Sampler.argmax(logits) : prompt[pos + 1];
            if (output) {
                expected[k++] = token;
            }
        }
        assertArrayEquals(expected, got);
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
        FlopCounter c = new FlopCounter(TestModels.model().config());
        Savings routed = side.variants().get(0).result().flops().savings();
        Savings never = side.variants().get(1).result().flops().savings();
        Savings both = side.variants().get(2).result().flops().savings();
        assertEquals(side.variants().get(0).result().nll(), side.variants().get(1).result().nll(), 0.0);
        assertEquals(routed.executedFlops() + tokens * 4 * c.probe(), never.executedFlops());
        assertEquals(routed.tokenBlocksSkipped(), never.tokenBlocksSkipped());
        assertTrue(both.tokenBlocksSkipped() > 0 && both.earlyExitTokens() == tokens, "skips and exits in one account");
        assertTrue(both.tokenBlocksSkipped() < routed.tokenBlocksSkipped(), "exited tokens are not routed in block 4");
        assertEquals(4.0, both.meanExitLayer(), 1e-12);
    }
}
