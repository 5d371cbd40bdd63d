package dev.skipflow.model.routing;

/**
 * FTP's four router inputs per token and block: relative position, attention-score importance from the
 * previous block (mean attention per query that could see the token, times the sequence length, so 1 is
 * average), the relative rank of that importance in the sequence, and the block's target sparsity.
 */
public final class RouterFeatures {

    public static final int COUNT = 4;

    private RouterFeatures() {}

    /**
     * @param importance per position of the sequence, from the previous block; null before the first block
     * @return {@code [rows * 4]}, row-major
     */
    public static float[] of(int[] positions, float[] importance, int sequenceLength, double sparsity) {
        int n = positions.length;
        float[] f = new float[n * COUNT];
        float[] imp = new float[n];
        for (int i = 0; i < n; i++) {
            int p = positions[i];
            imp[i] = importance == null || p >= importance.length ? 1f : importance[p] * sequenceLength;
        }
        for (int i = 0; i < n; i++) {
            int below = 0;
            for (int j = 0; j < n; j++) {
                below += imp[j] < imp[i] ? 1 : 0;
            }
            f[i * COUNT] = positions[i] / (float) Math.max(1, sequenceLength - 1);
            f[i * COUNT + 1] = Math.min(imp[i], 20f);
            f[i * COUNT + 2] = importance == null ? 0.5f : below / (float) Math.max(1, n - 1);
            f[i * COUNT + 3] = (float) sparsity;
        }
        return f;
    }

    /**
     * Mean attention each key position received per query that could see it, from attention probabilities
     * {@code [kvHeads, rows, group, keys]} summed on the device to {@code received[keys]}.
     */
    public static float[] importance(float[] received, int[] rowPositions, int heads) {
        float[] out = new float[received.length];
        for (int t = 0; t < received.length; t++) {
            int seers = 0;
            for (int p : rowPositions) {
                seers += p >= t ? 1 : 0;
            }
            out[t] = seers == 0 ? 0f : received[t] / (seers * (float) heads);
        }
        return out;
    }

    /**
     * Importance and rank of the newest token of a sequence (a decoding token) at {@code position}, from its own
     * query row of attention summed over {@code heads} heads, {@code row[offset + key]}: importance = the attention
     * it paid itself, per head, times the sequence length (what a prefill gives its last token); rank = the share
     * of earlier keys it attended less than itself (the prefill rank needs every token's received attention, which
     * a decode step does not compute; its own row is the one sample of it at hand). Keys of prompt tokens that
     * skipped the block (probability 0) count as attended less: measured on stories-deep16 with the serving
     * protocol, leaving them out of both factors made the decode decisions worse (63.5 % against 70.8 % agreement at
     * a like share), so they stay in and {@link DecodeCalibration} calibrates with them as served.
     *
     * @return {importance, rank}
     */
    public static float[] newest(float[] row, int offset, int position, int heads) {
        float self = row[offset + position];
        int below = 0;
        for (int t = 0; t < position; t++) {
            below += row[offset + t] < self ? 1 : 0;
        }
        return new float[] {self / heads * (position + 1), position == 0 ? 0.5f : below / (float) position};
    }

    /**
     * Writes a decoding token's four factors into row {@code i} of {@code f}: relative position 1 (it is the
     * newest), and importance and rank from {@link #newest}, or the neutral 1 and 0.5 when no block has been
     * observed yet (NaN), as before a prefill's first block.
     */
    public static void ofNewest(float[] f, int i, float importance, float rank, double sparsity) {
        boolean seen = !Float.isNaN(importance);
        f[i * COUNT] = 1f;
        f[i * COUNT + 1] = seen ? Math.min(importance, 20f) : 1f;
        f[i * COUNT + 2] = seen ? rank : 0.5f;
        f[i * COUNT + 3] = (float) sparsity;
    }
}
