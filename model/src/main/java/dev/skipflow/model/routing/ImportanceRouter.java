package dev.skipflow.model.routing;

import dev.skipflow.model.decoder.AttentionStats;
import java.util.Arrays;

/**
 * An untrained router on FTP's attention-score factor alone: each block keeps the first token and the
 * tokens that received the most attention (per query that could see them) in the blocks before, up to its
 * schedule's share; the first block, with nothing observed yet, runs densely. One prefill at a time: the
 * router keeps that prefill's importance between blocks. Decode runs densely.
 */
public final class ImportanceRouter implements TokenRouter {

    private final SparsitySchedule schedule;
    private float[] importance = new float[0];

    public ImportanceRouter(SparsitySchedule schedule) {
        this.schedule = schedule;
    }

    @Override
    public void attended(int layer, Candidates ran, AttentionStats attention) {
        if (!ran.prefill()) {
            return; // decode runs densely
        }
        float[] fresh = RouterFeatures.importance(attention.receivedByKey(), ran.positions(), attention.heads());
        if (importance.length < fresh.length) {
            importance = Arrays.copyOf(importance, fresh.length);
        }
        for (int t = 0; t < fresh.length; t++) {
            if (fresh[t] > 0) { // keys nobody attended this block (skipped ones) keep their last value
                importance[t] = fresh[t];
            }
        }
    }

    @Override
    public void begin(boolean prefill, int rows) {
        if (prefill) {
            importance = new float[0];
        }
    }

    @Override
    public int[] keepPrefill(int layer, int[] positions) {
        int n = positions.length;
        int keep = schedule.keep(layer, n);
        if (layer == 0 || keep >= n || importance.length == 0) {
            return TokenRouter.all(n);
        }
        float[] scores = new float[n];
        for (int i = 0; i < n; i++) {
            scores[i] = score(positions[i]);
        }
        return TokenRouter.topK(scores, keep, positions[0] == 0 ? 0 : -1);
    }

    private float score(int position) {
        return position < importance.length ? importance[position] : Float.MAX_VALUE;
    }

    @Override
    public String describe() {
        return "attention-importance " + schedule;
    }
}
