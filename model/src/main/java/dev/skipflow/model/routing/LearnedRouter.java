package dev.skipflow.model.routing;

import ai.djl.ndarray.NDArray;

/**
 * FTP's router at inference: one small MLP (4 inputs, 64 hidden, ReLU, 1 output) shared by all blocks,
 * scoring each token from {@link RouterFeatures}; a block keeps the highest-scoring tokens up to its
 * schedule's share. Runs on the host (a few thousand multiply-adds per block). Decode runs densely.
 */
public final class LearnedRouter implements TokenRouter, AttentionObserver {

    private final RouterArtifact artifact;
    private final SparsitySchedule schedule;
    private float[] importance;
    private int sequenceLength;

    public LearnedRouter(RouterArtifact artifact) {
        this(artifact, artifact.schedule());
    }

    /** The trained MLP with another schedule (sweeps). */
    public LearnedRouter(RouterArtifact artifact, SparsitySchedule schedule) {
        this.artifact = artifact;
        this.schedule = schedule;
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
    public String describe() {
        return "learned " + schedule;
    }
}
