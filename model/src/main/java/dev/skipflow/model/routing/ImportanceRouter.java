package dev.skipflow.model.routing;

import ai.djl.ndarray.NDArray;
import java.util.Arrays;

/**
 * An untrained router on FTP's attention-score factor alone: each block keeps the first token and the
 * tokens that received the most attention (per query that could see them) in the blocks before, up to its
 * schedule's share; the first block, with nothing observed yet, runs densely. One prefill at a time: the
 * router keeps that prefill's importance between blocks. Decode runs densely.
 */
public final class ImportanceRouter implements TokenRouter, AttentionObserver {

    private final SparsitySchedule schedule;
    private float[] importance = new float[0];

    public ImportanceRouter(SparsitySchedule schedule) {
        this.schedule = schedule;
    }

    @Override
    public void observe(NDArray probs, int[] rowPositions) {
        int keys = (int) probs.getShape().get(3);
        float[] received = probs.sum(new int[] {0, 1, 2}).toFloatArray();
        if (importance.length < keys || rowPositions[0] == 0 && rowPositions.length == keys) {
            importance = Arrays.copyOf(importance, Math.max(keys, importance.length));
        }
        // mean attention per query that could attend the key: later keys are seen by fewer queries
        for (int t = 0; t < keys; t++) {
            int seers = 0;
            for (int p : rowPositions) {
                seers += p >= t ? 1 : 0;
            }
            if (seers > 0 && received[t] > 0) {
                importance[t] = received[t] / seers;
            }
        }
    }

    @Override
    public void reset(int length) {
        importance = new float[0];
    }

    @Override
    public int[] keepPrefill(int layer, int[] positions) {
        int n = positions.length;
        int keep = schedule.keep(layer, n);
        if (layer == 0 || keep >= n || importance.length == 0) {
            return TokenRouter.all(n);
        }
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Float.compare(score(positions[b]), score(positions[a])));
        int[] rows = new int[keep];
        rows[0] = positions[0] == 0 ? 0 : order[0];
        int at = 1;
        for (int i = 0; at < keep; i++) {
            if (order[i] != rows[0]) {
                rows[at++] = order[i];
            }
        }
        Arrays.sort(rows);
        return rows;
    }

    private float score(int position) {
        return position < importance.length ? importance[position] : Float.MAX_VALUE;
    }

    @Override
    public String describe() {
        return "attention-importance " + schedule;
    }
}
