package dev.skipflow.model.routing;

import ai.djl.ndarray.NDManager;
import dev.skipflow.model.decoder.AttentionStats;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Per-block score thresholds for the learned router in decode, where one token per sequence cannot be ranked
 * against the others. Calibration documents are served as the job serves them: each one's prompt (its first half,
 * at least 16 tokens, as {@code eval --protocol serving} splits it) runs as one prefill routed by the artifact's
 * schedule, then its continuation is fed token by token, teacher-forced, through the decode path, and every
 * decoding token's score in every block is recorded. Block l's threshold is the score below which the decode share
 * s_l of those scores fall ({@link RouterArtifact#decodeShares()}). A token that skips a block carries the factors
 * of an earlier one into the next, so the scores depend on the cuts: the first pass runs every block, each later
 * one skips by the cuts before it ({@link #PASSES} in all; block l's scores depend only on blocks before it, so
 * each pass fixes the cascade one block further). Decode then skips about that share on text like the calibration
 * text. (A dense pass scoring every position as if it were the newest token misses what a routed prompt does to a
 * decoding token's attention row: on stories-deep16, prompts at 30 %, its cuts skipped 1.4 % of decoding
 * token-blocks for a 10 % share; these cuts, 10 % on the calibration documents.)
 */
public final class DecodeCalibration {

    /** The shortest prompt, as the serving protocol splits documents. */
    static final int MIN_PROMPT = 16;

    /** Calibration passes: the first without decode skips, each later one with the cuts before it. */
    static final int PASSES = 3;

    /** How strongly decode shares avoid influential blocks: block l's share is proportional to influence_l^-POWER. */
    static final double SHARE_POWER = 2;

    private DecodeCalibration() {}

    /**
     * Decode shares with mean {@code mean}, block l's proportional to 1 / influence_l² ({@link BlockInfluence},
     * ShortGPT's 1 - cos between a block's input and output, on {@code docs}). A decoding token that skips a block
     * loses that block's turn of its own hidden state, so the blocks that turn tokens least take most of the skips.
     */
    public static SparsitySchedule shares(LlamaModel model, List<int[]> docs, double mean) {
        return shares(BlockInfluence.measure(model, docs), mean, SHARE_POWER);
    }

    static SparsitySchedule shares(double[] influence, double mean, double power) {
        return SparsitySchedule.proportionalTo(Arrays.stream(influence).map(i -> Math.pow(Math.max(i, 1e-6), -power))
                .toArray(), mean);
    }

    /**
     * Thresholds for {@code artifact}'s decode shares; {@code -Double.MAX_VALUE} for blocks that are never skipped.
     * Documents too short to leave a continuation after their prompt are passed over.
     */
    public static double[] thresholds(LlamaModel model, RouterArtifact artifact, List<int[]> docs) {
        double[] sparsity = artifact.decodeShares().perLayer();
        double[] thresholds = null;
        for (int pass = 0; pass < PASSES; pass++) {
            thresholds = cuts(onePass(model, artifact, docs, thresholds), sparsity);
        }
        return thresholds;
    }

    /** Every decoding token's score per block, skipping where it scores below {@code cuts} (null: nowhere). */
    private static List<List<float[]>> onePass(LlamaModel model, RouterArtifact artifact, List<int[]> docs,
            double[] cuts) {
        int layers = model.spec().nLayers();
        List<List<float[]>> scores = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            scores.add(new ArrayList<>());
        }
        LearnedRouter router = new LearnedRouter(artifact);
        TokenRouter recording = new TokenRouter() {
            @Override
            public void begin(boolean prefill, int rows) {
                router.begin(prefill, rows);
            }

            @Override
            public int[] keepPrefill(int layer, int[] positions) {
                return router.keepPrefill(layer, positions);
            }

            @Override
            public boolean[] keepDecode(int layer, int[] positions, int[] rows) {
                float[] s = router.decodeScores(layer, positions, rows);
                boolean[] keep = new boolean[positions.length];
                Arrays.fill(keep, true);
                if (s != null) {
                    scores.get(layer).add(s);
                    for (int i = 0; cuts != null && i < keep.length; i++) {
                        keep[i] = s[i] >= cuts[layer];
                    }
                }
                return keep;
            }

            @Override
            public void attended(int layer, Candidates ran, AttentionStats attention) {
                router.attended(layer, ran, attention);
            }

            @Override
            public String describe() {
                return "calibration of " + router.describe();
            }
        };
        int context = Math.min(model.spec().seqLen(), docs.stream().mapToInt(d -> d.length).max().orElse(1));
        Forward.Plan plan = Forward.Plan.routed(recording);
        try (KvCache cache = new KvCache(model, 1, context, true)) {
            for (int[] doc : docs) {
                int n = Math.min(doc.length, context);
                int p = Math.max(MIN_PROMPT, n / 2);
                if (p >= n) {
                    continue;
                }
                int[] written = new int[layers];
                cache.clearSlot(0);
                try (NDManager step = model.newStepManager()) {
                    Forward.run(model, cache, step, true, Forward.prompt(0, 0, Arrays.copyOf(doc, p), null, written, true,
                            p, p - 1), plan);
                }
                for (int k = p; k < n - 1; k++) {
                    try (NDManager step = model.newStepManager()) {
                        Forward.run(model, cache, step, false,
                                List.of(new Forward.Row(0, k, doc[k], null, written, true, false, false)), plan);
                    }
                }
            }
        }
        return scores;
    }

    private static double[] cuts(List<List<float[]>> scores, double[] sparsity) {
        int layers = sparsity.length;
        double[] thresholds = new double[layers];
        for (int l = 0; l < layers; l++) {
            int total = scores.get(l).stream().mapToInt(a -> a.length).sum();
            float[] all = new float[total];
            int at = 0;
            for (float[] a : scores.get(l)) {
                System.arraycopy(a, 0, all, at, a.length);
                at += a.length;
            }
            thresholds[l] = total == 0 ? -Double.MAX_VALUE : quantileCut(all, sparsity[l]);
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
