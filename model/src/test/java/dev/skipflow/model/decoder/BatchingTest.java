package dev.skipflow.model.decoder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.engine.BatchEngine;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.sampling.Sampler;
import dev.skipflow.model.sampling.SamplingParams;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Continuous batching gives each sequence what it gets alone (compared on logits, teacher-forced). */
class BatchingTest {

    static final String[] PROMPTS = {"Once upon a time", "Lily and Tom went to the park", "The little dog",
        "One day, a girl named Sue", "There was a big red ball", "Tim had a toy car.", "The sun was hot",
        "Mom said", "A bird sat on a tree and sang a song every morning", "Ben"};

    static void assertClose(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], TestModels.LOGIT_TOLERANCE, what + " [" + i + "]");
        }
    }

    @Test
    void sequencesJoiningAndLeavingTheBatchSeeTheirSoloLogits() {
        // Each sequence runs alone first (its tokens and logits recorded), then all run through a batch of 4 slots
        // with requests arriving over time (slots recycled and compacted many times), each forced to its solo
        // stream: the logits at every step must match the solo ones, whatever the batch around it.
        var tok = TestModels.tokenizer();
        List<TestModels.Forcing> solo = new ArrayList<>();
        List<int[]> soloTokens = new ArrayList<>();
        List<SamplingParams> params = new ArrayList<>();
        try (BatchEngine engine = TestModels.engine(1, 300)) {
            for (int i = 0; i < PROMPTS.length; i++) {
                // different lengths, and some sampled with a seed so non-greedy rows batch too
                SamplingParams p = i % 3 == 2 ? new SamplingParams(40 + 17 * i, 0.8f, 0.9f, 1000L + i)
                        : SamplingParams.greedy(20 + 23 * i);
                params.add(p);
                TestModels.Forcing rec = TestModels.Forcing.recording(Sampler.of(p));
                solo.add(rec);
                soloTokens.add(TestModels.runAlone(engine, new Sequence(i, tok.encode(PROMPTS[i], true), rec)));
            }
        }
        Map<Integer, Sequence> got = new HashMap<>();
        List<TestModels.Forcing> batched = new ArrayList<>();
        int maxRunning = 0;
        try (BatchEngine engine = TestModels.engine(4, 300)) {
            int next = 0;
            int step = 0;
            while (got.size() < PROMPTS.length) {
                if (next < PROMPTS.length && step % 3 == 0) {
                    TestModels.Forcing f = new TestModels.Forcing(solo.get(next).pickedTokens(), Sampler.of(params.get(next)));
                    batched.add(f);
                    engine.submit(new Sequence(next, tok.encode(PROMPTS[next], true), f));
                    next++;
                }
                for (Sequence s : engine.step()) {
                    got.put((Integer) s.tag(), s);
                }
                maxRunning = Math.max(maxRunning, engine.running());
                step++;
            }
            assertTrue(engine.isIdle());
        }
        assertEquals(4, maxRunning, "the batch filled up");
        for (int i = 0; i < PROMPTS.length; i++) {
            List<float[]> expected = solo.get(i).logits;
            List<float[]> actual = batched.get(i).logits;
            assertEquals(expected.size(), actual.size(), "steps of sequence " + i);
            for (int k = 0; k < expected.size(); k++) {
                assertClose(expected.get(k), actual.get(k), "sequence " + i + " (" + PROMPTS[i] + ") step " + k);
            }
            assertArrayEquals(soloTokens.get(i), got.get(i).generated());
        }
    }

    @Test
    void greedyBatchedTokensEqualSoloOnesWhileTheirMarginIsClear() {
        var tok = TestModels.tokenizer();
        List<int[]> solo = new ArrayList<>();
        try (BatchEngine engine = TestModels.engine(1, 300)) {
            for (String p : PROMPTS) {
                solo.add(TestModels.generate(engine, tok.encode(p, true), 60, true));
            }
        }
        Map<Integer, int[]> got = new HashMap<>();
        try (BatchEngine engine = TestModels.engine(4, 300)) {
            for (int i = 0; i < PROMPTS.length; i++) {
                engine.submit(new Sequence(i, tok.encode(PROMPTS[i], true), SamplingParams.greedy(60)));
            }
            while (!engine.isIdle()) {
                for (Sequence s : engine.step()) {
                    got.put((Integer) s.tag(), s.generated());
                }
            }
        }
        int compared = 0;
        for (int i = 0; i < PROMPTS.length; i++) {
            compared += TestModels.assertGreedyAgrees(TestModels.model(), tok.encode(PROMPTS[i], true), solo.get(i),
                    got.get(i), PROMPTS[i]);
        }
        assertTrue(compared > 200, "compared " + compared + " tokens");
    }

    @Test
    void aBlockOverASubsetOfRowsComputesThoseRowsInDecodeAndPrefill() {
        // What routing and early exit build on: block(select(rows)) == rows of block(all), within rounding.
        var model = TestModels.model();
        var tok = TestModels.tokenizer();
        try (KvCache cache = new KvCache(model, 4, 64); NDManager step = model.newStepManager()) {
            int[][] prompts = new int[4][];
            for (int s = 0; s < 4; s++) {
                prompts[s] = tok.encode(PROMPTS[s], true);
                Forward.run(model, cache, step, true, Forward.prompt(s, 0, prompts[s], null, null, false,
                        prompts[s].length, prompts[s].length), Forward.Plan.DENSE);
            }
            int[] positions = new int[4];
            for (int s = 0; s < 4; s++) {
                positions[s] = prompts[s].length;
            }
            TokenBatch all = TokenBatch.decode(model, step, new int[] {0, 1, 2, 3}, positions);
            NDArray x = model.embed(all, new int[] {300, 301, 302, 303});
            // half the rows attend through the whole batch's view of the cache; one of four gathers its history
            assertNotNull(all.select(new int[] {1, 3}).span(), "a subset of half the rows attends through the view");
            assertSubsetMatches(model, cache, step, all, x, new int[] {1, 3});
            assertNull(all.select(new int[] {2}).span(), "a quarter of the rows gathers its history");
            assertSubsetMatches(model, cache, step, all, x, new int[] {2});

            // prefill: slot 3's prompt over again, a subset of its rows; the skipped rows' keys stay where they were
            int[] p = prompts[3];
            TokenBatch prefill = TokenBatch.prefill(model, step, 3, 0, p.length);
            assertSubsetMatches(model, cache, step, prefill, model.embed(prefill, p), new int[] {0, 2, 3, p.length - 1});
        }
    }

    private static void assertSubsetMatches(LlamaModel model, KvCache cache, NDManager step, TokenBatch batch, NDArray x,
            int[] rows) {
        float[] full = model.block(0).forward(x, batch, cache).toFloatArray();
        NDArray subset = x.get(new NDIndex("{}", step.create(dev.skipflow.model.nn.Tensors.toLongs(rows))));
        float[] part = model.block(0).forward(subset, batch.select(rows), cache).toFloatArray();
        int d = model.spec().dim();
        for (int i = 0; i < rows.length; i++) {
            float[] expected = java.util.Arrays.copyOfRange(full, rows[i] * d, (rows[i] + 1) * d);
            float[] actual = java.util.Arrays.copyOfRange(part, i * d, (i + 1) * d);
            assertArrayEquals(expected, actual, 1e-4f, (batch.isPrefill() ? "prefill" : "decode") + " row " + rows[i]);
        }
    }

    @Test
    void seededSamplingIsReproducibleAndSeedsDiffer() {
        int[] prompt = TestModels.tokenizer().encode("Once upon a time", true);
        try (BatchEngine engine = TestModels.engine(2, 200)) {
            int[] a = TestModels.runAlone(engine, new Sequence("a", prompt, new SamplingParams(60, 1.0f, 0.9f, 42L)));
            int[] b = TestModels.runAlone(engine, new Sequence("b", prompt, new SamplingParams(60, 1.0f, 0.9f, 42L)));
            int[] c = TestModels.runAlone(engine, new Sequence("c", prompt, new SamplingParams(60, 1.0f, 0.9f, 43L)));
            assertArrayEquals(a, b, "the same engine, shapes and seed");
            assertTrue(!java.util.Arrays.equals(a, c), "different seeds gave the same 60 tokens");
        }
    }

    @Test
    void promptThatDoesNotFitIsRefusedWithAClearMessage() {
        try (BatchEngine engine = TestModels.engine(1, 64)) {
            int[] prompt = new int[60];
            prompt[0] = 1;
            java.util.Arrays.fill(prompt, 1, 60, 300);
            var e = assertThrows(IllegalArgumentException.class,
                    () -> engine.submit(new Sequence("x", prompt, SamplingParams.greedy(10))));
            assertTrue(e.getMessage().contains("prompt has 60 tokens"), e.getMessage());
            assertTrue(e.getMessage().contains("context holds 64"), e.getMessage());
            engine.submit(new Sequence("y", prompt, SamplingParams.greedy(5))); // 60 + 5 - 1 = 64 fits
        }
    }

    @Test
    void anEngineWithoutStopTokensIsRefused() {
        var e = assertThrows(IllegalStateException.class, () -> BatchEngine.builder(TestModels.model()).build());
        assertTrue(e.getMessage().contains("stop tokens"), e.getMessage());
    }
}
