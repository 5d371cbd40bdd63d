package dev.skipflow.model;

import dev.skipflow.model.weights.LlamaWeights;
import dev.skipflow.model.spec.LlamaConfig;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Seeded random weights in the shape of real checkpoints, for throughput work where compute rather than
 * per-op overhead dominates. Their outputs mean nothing.
 */
public final class SyntheticModels {

    /** Known shapes, by name. */
    public static final List<String> NAMES = List.of("stories15M", "stories42M", "stories110M");

    private SyntheticModels() {}

    public static LlamaConfig config(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "stories15m" -> LlamaConfig.llama2c(288, 768, 6, 6, 6, 32000, 256, true);
            case "stories42m" -> LlamaConfig.llama2c(512, 1376, 8, 8, 8, 32000, 1024, true);
            case "stories110m" -> LlamaConfig.llama2c(768, 2048, 12, 12, 12, 32000, 1024, true);
            default -> throw new IllegalArgumentException("unknown synthetic model '" + name + "'; known: " + NAMES);
        };
    }

    public static LlamaWeights weights(String name, long seed) {
        return weights(config(name), seed, "synthetic:" + name);
    }

    public static LlamaWeights weights(LlamaConfig c, long seed, String source) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int d = c.dim();
        int kv = c.kvDim();
        int h = c.hiddenDim();
        int l = c.nLayers();
        float[] emb = normal(rnd, (long) c.vocabSize() * d, 0.02f);
        return new LlamaWeights(c, emb,
                ones(l, d), normal(rnd, l, (long) d * d, 0.02f), normal(rnd, l, (long) kv * d, 0.02f),
                normal(rnd, l, (long) kv * d, 0.02f), normal(rnd, l, (long) d * d, 0.02f),
                c.qkvBias() ? normal(rnd, l, d, 0.02f) : null, c.qkvBias() ? normal(rnd, l, kv, 0.02f) : null,
                c.qkvBias() ? normal(rnd, l, kv, 0.02f) : null,
                ones(l, d), normal(rnd, l, (long) h * d, 0.02f), normal(rnd, l, (long) d * h, 0.02f),
                normal(rnd, l, (long) h * d, 0.02f), ones(1, d)[0],
                c.sharedClassifier() ? emb : normal(rnd, (long) c.vocabSize() * d, 0.02f), source);
    }

    private static float[] normal(SplittableRandom rnd, long n, float std) {
        float[] a = new float[Math.toIntExact(n)];
        for (int i = 0; i < a.length; i += 2) {
            // Box-Muller, two values per draw
            double u1 = 1.0 - rnd.nextDouble();
            double u2 = rnd.nextDouble();
            double r = Math.sqrt(-2 * Math.log(u1)) * std;
            a[i] = (float) (r * Math.cos(2 * Math.PI * u2));
            if (i + 1 < a.length) {
                a[i + 1] = (float) (r * Math.sin(2 * Math.PI * u2));
            }
        }
        return a;
    }

    private static float[][] normal(SplittableRandom rnd, int layers, long each, float std) {
        float[][] a = new float[layers][];
        for (int i = 0; i < layers; i++) {
            a[i] = normal(rnd, each, std);
        }
        return a;
    }

    private static float[][] ones(int layers, int each) {
        float[][] a = new float[layers][each];
        for (float[] row : a) {
            java.util.Arrays.fill(row, 1f);
        }
        return a;
    }
}
