package dev.skipflow.model.routing;

import dev.skipflow.model.decoder.AttentionStats;

/**
 * An untrained per-token router: block 0 runs every prompt token; every later block keeps the first token, the most
 * recent {@code recentShare} of its budget, and fills the rest by the attention importance block 0 measured. One
 * ranking for all blocks, so a skipped token stays skipped (docs/PERFORMANCE.md, "Per-token decisions"). It is the
 * guide {@code train-router --guide mixed} leads the per-token router toward, with the share that keeps the most
 * agreement on held-out calibration text. Decode runs densely.
 */
public final class MixedRankRouter implements TokenRouter {

    private final SparsitySchedule schedule;
    private final double recentShare;
    private float[] importance;

    /** @param schedule the mean to keep; block 0's share moves to the others ({@link SparsitySchedule#firstBlockDense}) */
    public MixedRankRouter(SparsitySchedule schedule, double recentShare) {
        if (!(recentShare >= 0 && recentShare <= 1)) {
            throw new IllegalArgumentException("recent share must be in [0, 1], got " + recentShare);
        }
        this.schedule = schedule.firstBlockDense();
        this.recentShare = recentShare;
    }

    @Override
    public void begin(boolean prefill, int rows) {
        if (prefill) {
            importance = null;
        }
    }

    @Override
    public void attended(int layer, Candidates ran, AttentionStats attention) {
        if (ran.prefill() && importance == null) {
            importance = RouterFeatures.importance(attention.receivedByKey(), ran.positions(), attention.heads());
        }
    }

    @Override
    public int[] keepPrefill(int layer, int[] positions) {
        int keep = schedule.keep(layer, positions.length);
        if (importance == null || keep >= positions.length) {
            return TokenRouter.all(positions.length);
        }
        return keepRows(positions, importance, keep, recentShare);
    }

    /**
     * The rows to keep among {@code positions} (consecutive, as in a prefill): the first token when it is position 0,
     * the most recent {@code ceil(recentShare * keep)}, the rest by {@code importance} (ties to the more recent).
     */
    public static int[] keepRows(int[] positions, float[] importance, int keep, double recentShare) {
        int n = positions.length;
        int sink = positions[0] == 0 ? 1 : 0;
        int recent = Math.min((int) Math.ceil(recentShare * keep), keep - sink); // the sink never displaces the newest
        float[] scores = new float[n];
        for (int i = 0; i < n; i++) {
            float imp = importance != null && positions[i] < importance.length ? importance[positions[i]] : 0f;
            scores[i] = i >= n - recent ? Float.MAX_VALUE : imp + 1e-9f * i;
        }
        return TokenRouter.topK(scores, keep, positions[0] == 0 ? 0 : -1);
    }

    @Override
    public String describe() {
        return String.format(java.util.Locale.ROOT, "mixed-rank (recent %.2f) %s", recentShare, schedule);
    }
}
