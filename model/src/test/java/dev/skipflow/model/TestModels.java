package dev.skipflow.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import dev.skipflow.model.decoder.BlockRouter;
import dev.skipflow.model.decoder.ExitPolicy;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.engine.BatchEngine;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.io.Llama2cCheckpoint;
import dev.skipflow.model.sampling.Sampler;
import dev.skipflow.model.sampling.SamplingParams;
import dev.skipflow.model.tokenizer.Llama2cTokenizer;
import dev.skipflow.model.weights.LlamaWeights;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The real stories260K model and tokenizer from ../shared, for tests, and comparisons that cannot be flaky. */
public final class TestModels {

    /**
     * Logit tolerance for comparing two code paths or batch shapes: far above float rounding (about 1e-5 here),
     * far below what changes a prediction. Tokens are compared only while the reference's top-1 margin exceeds it.
     */
    public static final float LOGIT_TOLERANCE = 1e-3f;

    private static LlamaWeights weights;
    private static Llama2cTokenizer tokenizer;
    private static LlamaModel model;

    private TestModels() {}

    public static Path shared() {
        Path p = Path.of(System.getProperty("skipflow.shared", "../../shared"));
        if (!Files.isDirectory(p.resolve("models"))) {
            throw new IllegalStateException("The shared model folder " + p.toAbsolutePath() + " is missing: tests need "
                    + "../shared beside the checkout (see ../shared/SOURCES.md) or -Dskipflow.shared=PATH");
        }
        return p;
    }

    public static Path modelFile() {
        return shared().resolve("models/stories260K/stories260K.bin");
    }

    /** The uniform llama2.c weights (the scalar reference reads these). */
    public static synchronized LlamaWeights weights() {
        if (weights == null) {
            weights = Llama2cCheckpoint.read(modelFile());
        }
        return weights;
    }

    public static synchronized Llama2cTokenizer tokenizer() {
        if (tokenizer == null) {
            tokenizer = Llama2cTokenizer.read(shared().resolve("models/stories260K/tok512.bin"),
                    weights().config().vocabSize());
        }
        return tokenizer;
    }

    /** One DJL model shared by the tests of a JVM (it is immutable once built). */
    public static synchronized LlamaModel model() {
        if (model == null) {
            model = new LlamaModel(weights(), Device.cpu());
        }
        return model;
    }

    /** An engine on {@code m} that stops on the tokenizer's stop tokens. */
    public static BatchEngine engine(LlamaModel m, int maxBatch, int context, BlockRouter router, ExitPolicy exit) {
        return BatchEngine.builder(m).maxBatch(maxBatch).context(context).router(router).exit(exit)
                .stopTokens(tokenizer()).build();
    }

    public static BatchEngine engine(int maxBatch, int context) {
        return engine(model(), maxBatch, context, null, null);
    }

    /** Logits of every position of one prompt, through the dense prefill. */
    public static float[] prefillLogits(LlamaModel model, int[] tokens) {
        try (KvCache cache = new KvCache(model, 1, tokens.length); NDManager step = model.newStepManager()) {
            List<Forward.Row> rows = Forward.prompt(0, 0, tokens, null, null, false, tokens.length, 0);
            return Forward.run(model, cache, step, true, rows, Forward.Plan.DENSE).allLogits();
        }
    }

    /** Submits {@code s} to {@code engine}, steps until it finishes, and returns its generated tokens. */
    public static int[] runAlone(BatchEngine engine, Sequence s) {
        engine.submit(s);
        while (!s.isFinished()) {
            engine.step();
        }
        return s.generated();
    }

    public static int[] generate(BatchEngine engine, int[] prompt, int n, boolean adaptive) {
        return runAlone(engine, new Sequence("x", prompt, SamplingParams.greedy(n)).adaptive(adaptive));
    }

    /** Largest absolute element-wise difference of two arrays of the same length. */
    public static float maxDifference(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        float d = 0;
        for (int i = 0; i < a.length; i++) {
            d = Math.max(d, Math.abs(a[i] - b[i]));
        }
        return d;
    }

    /** Top-1 minus runner-up logit of row {@code [offset, offset + v)}. */
    public static float margin(float[] logits, int offset, int v) {
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

    /**
     * Asserts that greedy stream {@code actual} equals {@code expected}, {@code reference}'s greedy continuation of
     * {@code prompt}, token by token while {@code reference}'s top-1 margin (teacher-forced on {@code expected})
     * exceeds {@link #LOGIT_TOLERANCE}; from the first closer call on, either token is a correct greedy choice and
     * the streams may part. Returns how many tokens were compared.
     */
    public static int assertGreedyAgrees(LlamaModel reference, int[] prompt, int[] expected, int[] actual, String what) {
        int[] all = new int[prompt.length + expected.length];
        System.arraycopy(prompt, 0, all, 0, prompt.length);
        System.arraycopy(expected, 0, all, prompt.length, expected.length);
        float[] logits = prefillLogits(reference, all);
        int v = reference.spec().vocabSize();
        int compared = 0;
        for (int k = 0; k <= expected.length; k++) {
            if (margin(logits, (prompt.length - 1 + k) * v, v) < LOGIT_TOLERANCE) {
                return compared; // a near tie: both continuations are greedy within rounding
            }
            if (k == expected.length) {
                assertEquals(expected.length, actual.length, what + ": the stream ended at the same token");
                return compared;
            }
            assertTrue(k < actual.length, what + ": stream ended early at token " + k);
            assertEquals(expected[k], actual[k], what + ": token " + k);
            compared++;
        }
        return compared;
    }

    /**
     * A sampler for teacher forcing: it returns the given stream's tokens in turn (then {@code fallback}'s), and
     * records every row of logits it was handed, so two runs can be compared on logits with a tolerance.
     */
    public static final class Forcing implements Sampler {
        private final int[] stream;
        private final Sampler fallback;
        public final List<float[]> logits = new ArrayList<>();
        /** Every token it returned, a final stop token included. */
        public final List<Integer> picked = new ArrayList<>();

        public Forcing(int[] stream, Sampler fallback) {
            this.stream = stream;
            this.fallback = fallback;
        }

        /** The tokens it picked, as a stream another run can be forced along. */
        public int[] pickedTokens() {
            return picked.stream().mapToInt(Integer::intValue).toArray();
        }

        /** Records what {@code sampler} is handed and picks what it picks. */
        public static Forcing recording(Sampler sampler) {
            return new Forcing(new int[0], sampler);
        }

        @Override
        public int sample(float[] row) {
            logits.add(row.clone());
            int k = logits.size() - 1;
            int token = k < stream.length ? stream[k] : fallback.sample(row);
            picked.add(token);
            return token;
        }

        @Override
        public boolean argmaxOnly() {
            return false; // logits must reach the host to be recorded
        }

        @Override
        public SamplingParams params() {
            return fallback.params();
        }
    }
}
