package dev.skipflow.model.routing;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.decoder.AttentionStats;
import dev.skipflow.model.decoder.BlockHook;
import dev.skipflow.model.decoder.Forward;
import java.util.Arrays;
import java.util.List;

/**
 * Per-block score thresholds for the learned router in decode, where one token per sequence cannot be ranked
 * against the others. On calibration documents run densely, every position is scored as if it were the newest
 * token of its sequence (its factors from {@link RouterFeatures#newest}, out of its own attention row in the block
 * before); block l's threshold is the score below which the schedule's share s_l of those positions fall. Decode
 * then skips about the share of token-blocks a prefill does, on text like the calibration text.
 */
public final class DecodeCalibration {

    private DecodeCalibration() {}

    /** Thresholds for {@code artifact}'s schedule; {@code -Double.MAX_VALUE} for blocks that are never skipped. */
    public static double[] thresholds(LlamaModel model, RouterArtifact artifact, List<int[]> docs) {
        int layers = model.spec().nLayers();
        double[] sparsity = artifact.schedule().perLayer();
        float[][] scores = new float[layers][];
        int total = docs.stream().mapToInt(d -> d.length).sum();
        for (int l = 0; l < layers; l++) {
            scores[l] = new float[total];
        }
        int maxLen = docs.stream().mapToInt(d -> d.length).max().orElse(1);
        int at = 0;
        try (KvCache cache = new KvCache(model, 1, Math.min(maxLen, model.spec().seqLen()), false)) {
            for (int[] doc : docs) {
                int n = doc.length;
                float[] importance = new float[n];
                float[] rank = new float[n];
                Arrays.fill(importance, Float.NaN);
                int offset = at;
                try (NDManager step = model.newStepManager()) {
                    cache.clearSlot(0);
                    Forward.run(model, cache, step, true, Forward.prompt(0, 0, doc, null, null, false, n, n),
                            Forward.Plan.hooked(new BlockHook() {
                                @Override
                                public void before(int l, NDArray x) {
                                    float[] f = new float[n * RouterFeatures.COUNT];
                                    for (int t = 0; t < n; t++) {
                                        RouterFeatures.ofNewest(f, t, importance[t], rank[t], sparsity[l]);
                                    }
                                    System.arraycopy(artifact.score(f, n), 0, scores[l], offset, n);
                                }

                                @Override
                                public NDArray after(int l, NDArray x, NDArray y, AttentionStats attention) {
                                    // per query row, attention summed over heads: each position as the newest token
                                    int keys = attention.keys();
                                    float[] rows = attention.byQueryRow();
                                    for (int t = 0; t < n; t++) {
                                        float[] newest = RouterFeatures.newest(rows, t * keys, t, attention.heads());
                                        importance[t] = newest[0];
                                        rank[t] = newest[1];
                                    }
                                    return y;
                                }
                            }));
                }
                at += n;
            }
        }
        double[] thresholds = new double[layers];
        for (int l = 0; l < layers; l++) {
            thresholds[l] = quantileCut(scores[l], sparsity[l]);
        }
        return thresholds;
    }

    /** A cut with {@code share} of {@code scores} below it: midway between the neighbours it falls between. */
    static double quantileCut(float[] scores, double share) {
        int below = (int) Math.round(share * scores.length);
        if (below <= 0) {
            return -Double.MAX_VALUE;
        }
        if (below >= scores.length) {
            return Double.MAX_VALUE;
        }
        float[] sorted = scores.clone();
        Arrays.sort(sorted);
        return (sorted[below - 1] + (double) sorted[below]) / 2;
    }
}
