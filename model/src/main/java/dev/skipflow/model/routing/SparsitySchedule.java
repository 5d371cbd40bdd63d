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
