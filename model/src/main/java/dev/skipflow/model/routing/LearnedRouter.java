package dev.skipflow.model.routing;

import dev.skipflow.model.decoder.AttentionStats;

/**
 * FTP's router at inference: one small MLP (4 inputs, 64 hidden, ReLU, 1 output) shared by all blocks,
 * scoring each token from {@link RouterFeatures}; in a prefill, a block keeps the highest-scoring tokens up to
 * its schedule's share. Runs on the host (a few thousand multiply-adds per block).
 *
 * <p>In decode there is one new token per sequence, so no top-k: the token skips a block with a nonzero decode
 * share ({@link RouterArtifact#decodeShares()}, the schedule's unless the artifact gives its own) when its score is
 * below that block's decode threshold, calibrated so that on calibration text that share of tokens fall below it
 * ({@link DecodeCalibration}); without thresholds (older artifacts, or another schedule) below 0, the sign the
 * sparsity loss trained. Its factors are the newest token's ({@link RouterFeatures#newest}), from the last block
 * it ran.
 *
 * <p>An artifact with per-token decisions ({@link RouterArtifact#perToken}) runs block 0 for every prompt token and
 * keeps the importance block 0 measured for the rest of the prefill: every later block ranks the tokens alike, so a
 * token skipped by one block is skipped by every later block of at least its share, as with FTP's static router. A
 * token re-admitted after a skip carries a state its earlier blocks never updated; ranking a mix of recency and
 * importance once kept 0.3-2.5 points more agreement than re-ranking it per block (docs/PERFORMANCE.md, "Per-token
 * decisions").
 */
public final class LearnedRouter implements TokenRouter {

    private final RouterArtifact artifact;
    private final SparsitySchedule schedule;
    private final SparsitySchedule decodeSchedule;
    private float[] importance;
    private int sequenceLength;
    private final double[] decodeThresholds; // the artifact's, when routing with its own schedule
    private float[] decodeImportance; // per row of the current decode step; NaN until a block observed it
    private float[] decodeRank;

    public LearnedRouter(RouterArtifact artifact) {
        this(artifact, artifact.schedule());
    }

    /** The trained MLP with another schedule (sweeps). */
    public LearnedRouter(RouterArtifact artifact, SparsitySchedule schedule) {
        this.artifact = artifact;
        this.schedule = artifact.perToken() ? schedule.firstBlockDense() : schedule;
        boolean own = java.util.Arrays.equals(this.schedule.perLayer(), artifact.schedule().perLayer());
        this.decodeThresholds = own ? artifact.decodeThresholds() : null;
        this.decodeSchedule = own ? artifact.decodeShares() : schedule;
    }

    /** The same trained MLP with another schedule. */
    public LearnedRouter withSchedule(SparsitySchedule other) {
        return new LearnedRouter(artifact, other);
    }

    @Override
    public void begin(boolean prefill, int rows) {
        if (prefill) {
            importance = null;
            sequenceLength = rows;
        } else {
            decodeImportance = new float[rows];
            decodeRank = new float[rows];
            java.util.Arrays.fill(decodeImportance, Float.NaN);
        }
    }

    @Override
    public void attended(int layer, Candidates ran, AttentionStats attention) {
        if (!ran.prefill()) {
            attendedDecode(ran, attention);
            return;
        }
        if (importance != null && artifact.perToken()) {
            return; // ranked once, from block 0
        }
        int[] rowPositions = ran.positions();
        float[] imp = RouterFeatures.importance(attention.receivedByKey(), rowPositions, attention.heads());
        if (importance == null) {
            importance = imp;
        } else {
            // tokens that ran this block get fresh importance; skipped ones keep their last value
            for (int p : rowPositions) {
                if (p < imp.length && p < importance.length) {
                    importance[p] = imp[p];
                }
            }
        }
    }

    @Override
    public int[] keepPrefill(int layer, int[] positions) {
        int n = positions.length;
        int keep = schedule.keep(layer, n);
        if (keep >= n || (importance == null && artifact.perToken())) {
            return TokenRouter.all(n);
        }
        float[] scores = artifact.score(RouterFeatures.of(positions, importance, Math.max(sequenceLength, n),
                schedule.at(layer)), n);
        // the first token stays, as in the static router: it is the attention sink every later token leans on
        return TokenRouter.topK(scores, keep, positions[0] == 0 ? 0 : -1);
    }

    /** Each decoding row's factors for the next block, from its own attention row in the block it just ran. */
    private void attendedDecode(Candidates ran, AttentionStats attention) {
        int keys = attention.keys();
        float[] a = attention.byQueryRow();
        for (int j = 0; j < ran.rows().length; j++) {
            float[] f = RouterFeatures.newest(a, j * keys, ran.positions()[j], attention.heads());
            decodeImportance[ran.rows()[j]] = f[0];
            decodeRank[ran.rows()[j]] = f[1];
        }
    }

    /**
     * A decoding token skips block {@code layer} (with nonzero target sparsity) when its score is below the
     * block's decode threshold: the artifact's calibrated one for its own schedule (for the token's position bucket
     * when the artifact has one per bucket, {@link DecodeCalibration#bucket}), else 0.
     */
    @Override
    public boolean[] keepDecode(int layer, int[] positions, int[] rows) {
        boolean[] keep = new boolean[positions.length];
        float[] scores = decodeScores(layer, positions, rows);
        if (scores == null) {
            java.util.Arrays.fill(keep, true);
            return keep;
        }
        int layers = schedule.perLayer().length;
        boolean byPosition = decodeThresholds != null && decodeThresholds.length > layers;
        for (int i = 0; i < keep.length; i++) {
            double threshold = decodeThresholds == null ? 0
                    : decodeThresholds[(byPosition ? DecodeCalibration.bucket(positions[i]) * layers : 0) + layer];
            keep[i] = scores[i] >= threshold;
        }
        return keep;
    }

    /** The decoding rows' scores in block {@code layer}; null where the block skips no decoding token. */
    float[] decodeScores(int layer, int[] positions, int[] rows) {
        double sparsity = decodeSchedule.at(layer);
        if (sparsity <= 0) {
            return null;
        }
        float[] f = new float[positions.length * RouterFeatures.COUNT];
        for (int i = 0; i < positions.length; i++) {
            boolean seen = decodeImportance != null;
            RouterFeatures.ofNewest(f, i, seen ? decodeImportance[rows[i]] : Float.NaN, seen ? decodeRank[rows[i]] : 0.5f,
                    sparsity);
        }
        return artifact.score(f, positions.length);
    }

    /**
     * The MLP's score of one token in a block with nonzero sparsity (4 → 64 → 1, ReLU); the features come from
     * attention the block computed anyway. A short prompt whose block keeps every token is charged too.
     */
    @Override
    public long decisionFlops(int layer) {
        return decisionFlops(layer, true);
    }

    /** In decode, blocks with no decode share score nothing. */
    @Override
    public long decisionFlops(int layer, boolean prefill) {
        if ((prefill ? schedule : decodeSchedule).at(layer) <= 0) {
            return 0;
        }
        int h = RouterArtifact.HIDDEN;
        return 2L * RouterFeatures.COUNT * h + h + h + 2L * h + 1;
    }

    @Override
    public String describe() {
        return "learned " + schedule + (java.util.Arrays.equals(decodeSchedule.perLayer(), schedule.perLayer()) ? ""
                : ", decode " + decodeSchedule);
    }
}
