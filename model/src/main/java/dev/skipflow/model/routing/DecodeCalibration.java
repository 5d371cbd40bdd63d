package dev.skipflow.model.routing;

import ai.djl.ndarray.NDManager;
import dev.skipflow.model.decoder.AttentionStats;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Per-block score thresholds for the learned router in decode, where one token per sequence cannot be ranked
 * against the others. Calibration documents are served as the job serves them: each one's prompt ({@link #PROMPTS}
 * tokens, cycling over the documents, the last as {@code eval --protocol serving} splits it) runs as one prefill
 * routed by the artifact's schedule, then its continuation is fed token by token, teacher-forced, through the
 * decode path, and every decoding token's score in every block is recorded with its position. Block l's threshold
 * in a position bucket ({@link #BUCKET_STARTS}) is the score below which the decode share s_l of that bucket's
 * scores fall ({@link RouterArtifact#decodeShares()}). A token that skips a block carries the factors
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

    /**
     * Where decode position buckets start after the first (positions 0-15, 16-31, 32-63, 64-127, 128 on). A
     * decoding token's features (its self-attention times the sequence length, its rank among the keys it attends)
     * drift with the context length, so one cut per block skipped 24 % of decoding token-blocks at positions 16-31
     * where it was calibrated for 10 % at 128-255 (stories-deep16).
     */
    static final int[] BUCKET_STARTS = {16, 32, 64, 128};

    /**
     * Prompt lengths the calibration documents cycle through, so that every position bucket sees decoding tokens;
     * 0 = the serving protocol's split (half the document, at least {@link #MIN_PROMPT}).
     */
    static final int[] PROMPTS = {6, 12, 24, 48, 0};

    /** Fewest scores a bucket needs for its own cut: ten below it at the block's share. */
    static final int MIN_BELOW = 10;

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

    /** Shares with mean {@code mean}, block l's proportional to influence_l^-power (power 0: uniform). */
    public static SparsitySchedule shares(double[] influence, double mean, double power) {
        return SparsitySchedule.proportionalTo(Arrays.stream(influence).map(i -> Math.pow(Math.max(i, 1e-6), -power))
                .toArray(), mean);
    }

    /**
     * {@code artifact} with decoding tokens skipping {@code mean} of their token-blocks, spread by {@link #shares};
     * its decode cuts are dropped, to be calibrated for the new shares ({@link #thresholds}).
     */
    public static RouterArtifact withDecodeShare(LlamaModel model, RouterArtifact artifact, List<int[]> docs,
            double mean) {
        return artifact.withDecodeSchedule(shares(model, docs, mean), String.format(Locale.ROOT,
                "decoding tokens skip %.0f%% of token-blocks, by 1/influence^2", 100 * mean));
    }

    /** How many decode position buckets cuts are kept for. */
    public static int buckets() {
        return BUCKET_STARTS.length + 1;
    }

    /** The decode position bucket of {@code position}. */
    public static int bucket(int position) {
        int b = 0;
        while (b < BUCKET_STARTS.length && position >= BUCKET_STARTS[b]) {
            b++;
        }
        return b;
    }

    /**
     * Thresholds for {@code artifact}'s decode shares, one per block for each position bucket (bucket-major:
     * {@code [bucket * blocks + block]}); {@code -Double.MAX_VALUE} for blocks that are never skipped. A bucket
     * with too few calibration scores for the share takes the cut over all positions. Documents too short to leave
     * a continuation after their prompt are passed over.
     */
    public static double[] thresholds(LlamaModel model, RouterArtifact artifact, List<int[]> docs) {
        double[] sparsity = artifact.decodeShares().perLayer();
        double[] thresholds = null;
        for (int pass = 0; pass < PASSES; pass++) {
            thresholds = cuts(onePass(model, artifact, docs, thresholds), sparsity);
        }
        return thresholds;
    }

    /**
     * Every decoding token's score per bucket and block ({@code [bucket][block]}), skipping where it scores below
     * {@code cuts} (null: nowhere).
     */
    private static List<List<List<float[]>>> onePass(LlamaModel model, RouterArtifact artifact, List<int[]> docs,
            double[] cuts) {
        int layers = model.spec().nLayers();
        List<List<List<float[]>>> scores = new ArrayList<>();
        for (int b = 0; b < buckets(); b++) {
            List<List<float[]>> perBlock = new ArrayList<>();
            for (int l = 0; l < layers; l++) {
                perBlock.add(new ArrayList<>());
            }
            scores.add(perBlock);
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
                    for (int i = 0; i < keep.length; i++) {
                        int b = bucket(positions[i]);
                        scores.get(b).get(layer).add(new float[] {s[i]});
                        keep[i] = cuts == null || s[i] >= cuts[b * layers + layer];
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
            for (int d = 0; d < docs.size(); d++) {
                int[] doc = docs.get(d);
                int n = Math.min(doc.length, context);
                int p = PROMPTS[d % PROMPTS.length] > 0 ? PROMPTS[d % PROMPTS.length] : Math.max(MIN_PROMPT, n / 2);
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

    private static double[] cuts(List<List<List<float[]>>> scores, double[] sparsity) {
        int layers = sparsity.length;
        double[] thresholds = new double[buckets() * layers];
        for (int l = 0; l < layers; l++) {
            List<float[]> everywhere = new ArrayList<>();
            for (int b = 0; b < buckets(); b++) {
                everywhere.addAll(scores.get(b).get(l));
            }
            double overall = everywhere.isEmpty() ? -Double.MAX_VALUE : quantileCut(flat(everywhere), sparsity[l]);
            for (int b = 0; b < buckets(); b++) {
                List<float[]> here = scores.get(b).get(l);
                thresholds[b * layers + l] = here.size() * sparsity[l] < MIN_BELOW ? overall
                        : quantileCut(flat(here), sparsity[l]);
            }
        }
        return thresholds;
    }

    private static float[] flat(List<float[]> parts) {
        float[] all = new float[parts.stream().mapToInt(a -> a.length).sum()];
        int at = 0;
        for (float[] a : parts) {
            System.arraycopy(a, 0, all, at, a.length);
            at += a.length;
        }
        return all;
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
