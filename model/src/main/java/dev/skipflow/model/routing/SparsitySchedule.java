package dev.skipflow.model.routing;

import java.util.Arrays;

/** The fraction of tokens each block skips; its mean is the overall token-block sparsity. */
public record SparsitySchedule(double[] perLayer) {

    public SparsitySchedule {
        for (double s : perLayer) {
            if (!(s >= 0 && s <= 1)) {
                throw new IllegalArgumentException("block sparsity must be in [0, 1], got " + s);
            }
        }
        perLayer = perLayer.clone();
    }

    public static SparsitySchedule uniform(double sparsity, int layers) {
        double[] s = new double[layers];
        Arrays.fill(s, sparsity);
        return new SparsitySchedule(s);
    }

    public double at(int layer) {
        return perLayer[layer];
    }

    public double mean() {
        return Arrays.stream(perLayer).average().orElse(0);
    }

    /**
     * The same shape with mean {@code target}: every block's share scaled by target / mean and capped at 1, the cap's
     * excess spread over the blocks below it; uniform when this schedule skips nothing.
     */
    public SparsitySchedule scaledTo(double target) {
        if (!(target >= 0 && target < 1)) {
            throw new IllegalArgumentException("sparsity must be in [0, 1), got " + target);
        }
        int n = perLayer.length;
        if (mean() <= 0) {
            return uniform(target, n);
        }
        double[] s = new double[n];
        boolean[] capped = new boolean[n];
        for (int round = 0; round < n; round++) { // each round caps at least one more block, or ends
            double cappedSum = 0, freeSum = 0;
            for (int i = 0; i < n; i++) {
                if (capped[i]) {
                    cappedSum += 1;
                } else {
                    freeSum += perLayer[i];
                }
            }
            double factor = freeSum <= 0 ? 0 : (target * n - cappedSum) / freeSum;
            boolean more = false;
            for (int i = 0; i < n; i++) {
                s[i] = capped[i] ? 1 : perLayer[i] * factor;
                if (s[i] > 1) {
                    capped[i] = true;
                    more = true;
                }
            }
            if (!more) {
                break;
            }
        }
        return new SparsitySchedule(s);
    }

    /**
     * Shares proportional to {@code weights} (non-negative, not all zero) with mean {@code target}, capped at 1 as
     * {@link #scaledTo} caps them.
     */
    public static SparsitySchedule proportionalTo(double[] weights, double target) {
        double max = Arrays.stream(weights).max().orElse(0);
        if (!(max > 0) || Arrays.stream(weights).anyMatch(w -> !(w >= 0) || Double.isInfinite(w))) {
            throw new IllegalArgumentException("weights must be finite, non-negative and not all zero: "
                    + Arrays.toString(weights));
        }
        return new SparsitySchedule(Arrays.stream(weights).map(w -> w / max).toArray()).scaledTo(target);
    }

    /**
     * Block 0 skipping nothing and the others' shares scaled up to keep the mean (as {@link #scaledTo} scales and
     * caps): for routers that rank tokens by what the first block measured, which must first run it.
     */
    public SparsitySchedule firstBlockDense() {
        if (perLayer.length < 2 || perLayer[0] == 0) {
            return this;
        }
        double[] s = perLayer.clone();
        s[0] = 0;
        double rest = Arrays.stream(s).sum();
        if (rest <= 0) { // only block 0 skipped: spread its share over the others
            Arrays.fill(s, 1, s.length, perLayer[0] / (s.length - 1));
            return new SparsitySchedule(s);
        }
        return new SparsitySchedule(s).scaledTo(mean());
    }

    /** How many of {@code n} tokens a block keeps: the rest of its sparsity, at least one. */
    public int keep(int layer, int n) {
        return Math.max(1, n - (int) Math.round(perLayer[layer] * n));
    }

    @Override
    public String toString() {
        // two decimals: searched schedules are arbitrary doubles and the report names configurations by them
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < perLayer.length; i++) {
            b.append(i == 0 ? "" : ", ").append(String.format(java.util.Locale.ROOT, "%.2f", perLayer[i]));
        }
        return b.append(']').toString();
    }
}
