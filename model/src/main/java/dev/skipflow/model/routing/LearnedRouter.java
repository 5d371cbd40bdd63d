package dev.skipflow.model.routing;

import ai.djl.ndarray.NDArray;

/**
 * FTP's router at inference: one small MLP (4 inputs, 64 hidden, ReLU, 1 output) shared by all blocks,
 * scoring each token from {@link RouterFeatures}; in a prefill, a block keeps the highest-scoring tokens up to
 * its schedule's share. Runs on the host (a few thousand multiply-adds per block).
 *
 * <p>In decode there is one new token per sequence, so no top-k: the token skips a block with nonzero target
 * sparsity when its score is below that block's decode threshold, calibrated so that on calibration text the
 * schedule's share of tokens fall below it ({@link DecodeCalibration}); without thresholds (older artifacts, or
 * another schedule) below 0, the sign the sparsity loss trained. Its factors are the newest token's
 * ({@link RouterFeatures#newest}), from the last block it ran.
 */
public final class LearnedRouter implements TokenRouter, AttentionObserver {

    private final RouterArtifact artifact;
    private final SparsitySchedule schedule;
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
        this.schedule = schedule;
        boolean own = java.util.Arrays.equals(schedule.perLayer(), artifact.schedule().perLayer());
        this.decodeThresholds = own ? artifact.decodeThresholds() : null;
    }

    /** The same trained MLP with another schedule. */
    public LearnedRouter withSchedule(SparsitySchedule other) {
        return new LearnedRouter(artifact, other);
    }

    @Override
    public void reset(int length) {
        importance = null;
        sequenceLength = length;
    }

    @Override
    public void observe(NDArray probs, int[] rowPositions) {
        int heads = (int) (probs.getShape().get(0) * probs.getShape().get(2));
        float[] imp = RouterFeatures.importance(probs.sum(new int[] {0, 1, 2}).toFloatArray(), rowPositions, heads);
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
        if (keep >= n) {
            return TokenRouter.all(n);
        }
        float[] scores = artifact.score(RouterFeatures.of(positions, importance, Math.max(sequenceLength, n),
                schedule.at(layer)), n);
        return TokenRouter.topK(scores, keep, -1);
    }

    @Override
    public void resetDecode(int rows) {
        decodeImportance = new float[rows];
        decodeRank = new float[rows];
        java.util.Arrays.fill(decodeImportance, Float.NaN);
    }

    @Override
    public void observeDecode(NDArray probs, int[] rowPositions, int[] rows) {
        long[] shape = probs.getShape().getShape(); // [rows, kvHeads, group, keys]
        int keys = (int) shape[3];
        int heads = (int) (shape[1] * shape[2]);
        float[] a = probs.sum(new int[] {1, 2}).toFloatArray();
        for (int j = 0; j < rows.length; j++) {
            float[] f = RouterFeatures.newest(a, j * keys, rowPositions[j], heads);
            decodeImportance[rows[j]] = f[0];
            decodeRank[rows[j]] = f[1];
        }
    }

    /**
     * A decoding token skips block {@code layer} (with nonzero target sparsity) when its score is below the
     * block's decode threshold: the artifact's calibrated one for its own schedule, else 0.
     */
    @Override
    public boolean[] keepDecode(int layer, int[] positions, int[] rows) {
        boolean[] keep = new boolean[positions.length];
        double sparsity = schedule.at(layer);
        if (sparsity <= 0) {
            java.util.Arrays.fill(keep, true);
            return keep;
        }
        float[] f = new float[positions.length * RouterFeatures.COUNT];
        for (int i = 0; i < positions.length; i++) {
            boolean seen = decodeImportance != null;
            RouterFeatures.ofNewest(f, i, seen ? decodeImportance[rows[i]] : Float.NaN, seen ? decodeRank[rows[i]] : 0.5f,
                    sparsity);
        }
        float[] scores = artifact.score(f, positions.length);
        double threshold = decodeThresholds == null ? 0 : decodeThresholds[layer];
        for (int i = 0; i < keep.length; i++) {
            keep[i] = scores[i] >= threshold;
        }
        return keep;
    }

    @Override
    public String describe() {
        return "learned " + schedule;
    }
}
