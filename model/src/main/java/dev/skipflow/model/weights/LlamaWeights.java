package dev.skipflow.model.weights;

import dev.skipflow.model.spec.LlamaConfig;

/**
 * Host-side fp32 weights in llama2.c's layout: matrices are row-major {@code [out, in]}, RoPE pairs
 * adjacent dimensions (2i, 2i+1). Loaders convert other layouts into this one, so the decoder and the
 * scalar reference read a single format.
 */
public record LlamaWeights(
        LlamaConfig config,
        float[] tokenEmbedding, // [vocab, dim]
        float[][] rmsAtt, // [layer][dim]
        float[][] wq, // [layer][dim * dim]
        float[][] wk, // [layer][kvDim * dim]
        float[][] wv, // [layer][kvDim * dim]
        float[][] wo, // [layer][dim * dim]
        float[][] bq, // [layer][dim] or null
        float[][] bk, // [layer][kvDim] or null
        float[][] bv, // [layer][kvDim] or null
        float[][] rmsFfn, // [layer][dim]
        float[][] w1, // [layer][hidden * dim]
        float[][] w2, // [layer][dim * hidden]
        float[][] w3, // [layer][hidden * dim]
        float[] rmsFinal, // [dim]
        float[] classifier, // [vocab, dim]; the embedding itself when shared
        String source) {

    public LlamaWeights {
        LlamaConfig c = config;
        int d = c.dim();
        int kv = c.kvDim();
        int h = c.hiddenDim();
        int l = c.nLayers();
        check("token_embedding", tokenEmbedding, (long) c.vocabSize() * d);
        check("classifier", classifier, (long) c.vocabSize() * d);
        check("rms_final", rmsFinal, d);
        checkLayers("rms_att", rmsAtt, l, d);
        checkLayers("wq", wq, l, (long) d * d);
        checkLayers("wk", wk, l, (long) kv * d);
        checkLayers("wv", wv, l, (long) kv * d);
        checkLayers("wo", wo, l, (long) d * d);
        checkLayers("rms_ffn", rmsFfn, l, d);
        checkLayers("w1", w1, l, (long) h * d);
        checkLayers("w2", w2, l, (long) d * h);
        checkLayers("w3", w3, l, (long) h * d);
        if (c.qkvBias()) {
            checkLayers("bq", bq, l, d);
            checkLayers("bk", bk, l, kv);
            checkLayers("bv", bv, l, kv);
        }
    }

    private static void check(String name, float[] a, long expected) {
        if (a == null || a.length != expected) {
            throw new IllegalArgumentException("weight " + name + " has " + (a == null ? "no" : a.length)
                    + " values, expected " + expected);
        }
    }

    private static void checkLayers(String name, float[][] a, int layers, long each) {
        if (a == null || a.length != layers) {
            throw new IllegalArgumentException("weight " + name + " has " + (a == null ? 0 : a.length)
                    + " layers, expected " + layers);
        }
        for (int i = 0; i < layers; i++) {
            check(name + "[" + i + "]", a[i], each);
        }
    }

    @Override
    public String toString() {
        return "LlamaWeights[" + source + ", " + config + "]";
    }
}
