package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import dev.skipflow.model.ModelSource;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.engine.BatchEngine;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.sampling.SamplingParams;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.util.Arrays;

/**
 * Greedy text from the job (batched with whatever else is in flight) against the default model's greedy
 * continuation computed alone: equal token by token while the reference's top-1 margin exceeds a tolerance far
 * above float rounding; past the first near tie either continuation is greedy, so only the text before it must
 * match. Exact text equality across batch shapes would pass only by luck of the CPU's kernels.
 */
final class GreedyCheck {

    private static final float TOLERANCE = 1e-3f;

    private GreedyCheck() {}

    /** What a greedy completion of {@code prompt} must be: its whole text, or the text it must start with. */
    record Expected(String text, String mustStartWith, boolean whole) {}

    static Expected expected(String prompt, int maxTokens) {
        ModelSource source = ModelSource.defaults();
        var weights = source.loadWeights();
        Tokenizer tokenizer = source.loadTokenizer(weights.spec().vocabSize());
        int[] tokens = tokenizer.encode(prompt, true);
        try (LlamaModel model = new LlamaModel(weights, ai.djl.Device.cpu());
                BatchEngine engine = BatchEngine.builder(model).maxBatch(1).stopTokens(tokenizer).build()) {
            Sequence s = new Sequence("reference", tokens, SamplingParams.greedy(maxTokens));
            engine.submit(s);
            while (!s.isFinished()) {
                engine.step();
            }
            int[] out = s.generated();
            int[] all = Arrays.copyOf(tokens, tokens.length + out.length);
            System.arraycopy(out, 0, all, tokens.length, out.length);
            float[] logits;
            try (KvCache cache = new KvCache(model, 1, all.length); NDManager step = model.newStepManager()) {
                logits = Forward.run(model, cache, step, true, Forward.prompt(0, 0, all, null, null, false, all.length, 0),
                        Forward.Plan.DENSE).allLogits();
            }
            int v = model.spec().vocabSize();
            int clear = 0;
            while (clear <= out.length && margin(logits, (tokens.length - 1 + clear) * v, v) >= TOLERANCE) {
                clear++;
            }
            int prev = tokens[tokens.length - 1];
            String text = tokenizer.decode(prev, out);
            boolean whole = clear > out.length; // every choice, the stop included, was clear
            return new Expected(text, tokenizer.decode(prev, Arrays.copyOf(out, Math.min(clear, out.length))), whole);
        }
    }

    static void assertGreedy(Expected e, String actual, String what) {
        if (e.whole()) {
            assertEquals(e.text(), actual, what);
        } else {
            assertTrue(actual.startsWith(e.mustStartWith()), what + ": expected to start with [" + e.mustStartWith()
                    + "] (the reference's tokens before its first near tie), got [" + actual + "]");
        }
    }

    private static float margin(float[] logits, int offset, int v) {
        float best = Float.NEGATIVE_INFINITY;
        float second = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) {
            float x = logits[offset + i];
            if (x > best) {
                second = best;
                best = x;
            } else if (x > second) {
                second = x;
            }
        }
        return best - second;
    }
}
