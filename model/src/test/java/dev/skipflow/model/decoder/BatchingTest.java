package dev.skipflow.model.decoder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.model.TestModels;
import dev.skipflow.model.sampling.SamplingParams;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Continuous batching gives each sequence exactly what it gets alone. */
class BatchingTest {

    static final String[] PROMPTS = {"Once upon a time", "Lily and Tom went to the park", "The little dog",
        "One day, a girl named Sue", "There was a big red ball", "Tim had a toy car.", "The sun was hot",
        "Mom said", "A bird sat on a tree and sang a song every morning", "Ben"};

    private static int[] alone(BatchEngine engine, int[] prompt, SamplingParams params) {
        return TestModels.runAlone(engine, new Sequence("alone", prompt, params));
    }

    @Test
    void sequencesJoiningAndLeavingTheBatchProduceTheirSoloTokens() {
        var tok = TestModels.tokenizer();
        Map<Integer, int[]> expected = new HashMap<>();
        List<SamplingParams> params = new ArrayList<>();
        try (BatchEngine solo = new BatchEngine(TestModels.model(), 1, 300)) {
            for (int i = 0; i < PROMPTS.length; i++) {
                // different lengths, and some sampled with a seed so non-greedy rows batch too
                SamplingParams p = i % 3 == 2
                        ? new SamplingParams(40 + 17 * i, 0.8f, 0.9f, 1000L + i)
                        : SamplingParams.greedy(20 + 23 * i);
                params.add(p);
                expected.put(i, alone(solo, tok.encode(PROMPTS[i], true), p));
            }
        }
        // Batch of 4 slots, requests arriving over time: slots are recycled and compacted many times.
        Map<Integer, int[]> got = new HashMap<>();
        int maxRunning = 0;
        try (BatchEngine engine = new BatchEngine(TestModels.model(), 4, 300)) {
            int next = 0;
            int step = 0;
            while (got.size() < PROMPTS.length) {
                if (next < PROMPTS.length && step % 3 == 0) {
                    engine.submit(new Sequence(next, tok.encode(PROMPTS[next], true), params.get(next)));
                    next++;
                }
                for (Sequence s : engine.step()) {
                    got.put((Integer) s.tag(), s.generated());
                }
                maxRunning = Math.max(maxRunning, engine.running());
                step++;
            }
            assertTrue(engine.isIdle());
        }
        assertEquals(4, maxRunning, "the batch filled up");
        for (int i = 0; i < PROMPTS.length; i++) {
            assertArrayEquals(expected.get(i), got.get(i), "sequence " + i + " (" + PROMPTS[i] + ")");
        }
    }

    @Test
    void aBlockOverASubsetOfRowsComputesExactlyThoseRows() {
        // The hook routing and early exit build on: block(select(rows)) == rows of block(all).
        var model = TestModels.model();
        var tok = TestModels.tokenizer();
        try (KvCache cache = new KvCache(model, 4, 64); ai.djl.ndarray.NDManager step = model.newStepManager()) {
            int[][] prompts = new int[4][];
            for (int s = 0; s < 4; s++) {
                prompts[s] = tok.encode(PROMPTS[s], true);
                TokenBatch pre = TokenBatch.prefill(model, step, s, 0, prompts[s].length);
                ai.djl.ndarray.NDArray x = model.embed(pre, prompts[s]);
                for (int l = 0; l < model.config().nLayers(); l++) {
                    x = model.block(l, x, pre, cache);
                }
            }
            int[] slots = {0, 1, 2, 3};
            int[] positions = new int[4];
            int[] next = {300, 301, 302, 303};
            for (int s = 0; s < 4; s++) {
                positions[s] = prompts[s].length;
            }
            TokenBatch all = TokenBatch.decode(model, step, slots, positions);
            ai.djl.ndarray.NDArray x = model.embed(all, next);
            float[] full = model.block(0, x, all, cache).toFloatArray();
            int[] rows = {1, 3};
            TokenBatch some = all.select(rows);
            float[] part = model.block(0, x.get(new ai.djl.ndarray.index.NDIndex("{}",
                    step.create(new long[] {1, 3}))), some, cache).toFloatArray();
            int d = model.config().dim();
            for (int i = 0; i < rows.length; i++) {
                float[] expected = java.util.Arrays.copyOfRange(full, rows[i] * d, (rows[i] + 1) * d);
                float[] actual = java.util.Arrays.copyOfRange(part, i * d, (i + 1) * d);
                assertArrayEquals(expected, actual, 1e-6f, "row " + rows[i]);
            }
        }
    }

    @Test
    void seededSamplingIsReproducibleAndSeedsDiffer() {
        int[] prompt = TestModels.tokenizer().encode("Once upon a time", true);
        try (BatchEngine engine = new BatchEngine(TestModels.model(), 2, 200)) {
            int[] a = alone(engine, prompt, new SamplingParams(60, 1.0f, 0.9f, 42L));
            int[] b = alone(engine, prompt, new SamplingParams(60, 1.0f, 0.9f, 42L));
            int[] c = alone(engine, prompt, new SamplingParams(60, 1.0f, 0.9f, 43L));
            assertArrayEquals(a, b);
            assertTrue(!java.util.Arrays.equals(a, c), "different seeds gave the same 60 tokens");
        }
    }

    @Test
    void promptThatDoesNotFitIsRefusedWithAClearMessage() {
        try (BatchEngine engine = new BatchEngine(TestModels.model(), 1, 64)) {
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
}
