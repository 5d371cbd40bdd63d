package dev.skipflow.model.routing;

import java.util.Arrays;
import java.util.BitSet;

/** ShortGPT-style baseline: whole blocks removed for every token (prefill and decode). */
public final class BlockRemoval implements TokenRouter {

    private final BitSet removed;
    private final int layers;

    public BlockRemoval(int layers, int... removedLayers) {
        this.layers = layers;
        this.removed = new BitSet(layers);
        for (int l : removedLayers) {
            removed.set(l);
        }
    }

    /**
     * Removes the {@code count} blocks with the lowest influence (1 - cos(input, output), measured by
     * {@link BlockInfluence}), lowest first.
     */
    public static BlockRemoval lowestInfluence(double[] influence, int count) {
        Integer[] order = new Integer[influence.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Double.compare(influence[a], influence[b]));
        int[] drop = new int[Math.min(count, influence.length)];
        for (int i = 0; i < drop.length; i++) {
            drop[i] = order[i];
        }
        return new BlockRemoval(influence.length, drop);
    }

    @Override
    public int[] keepPrefill(int layer, int[] positions) {
        return removed.get(layer) ? new int[0] : TokenRouter.all(positions.length);
    }

    @Override
    public boolean[] keepDecode(int layer, int[] positions) {
        if (!removed.get(layer)) {
            return null;
        }
        return new boolean[positions.length];
    }

    public double sparsity() {
        return removed.cardinality() / (double) layers;
    }

    @Override
    public String describe() {
        return "remove blocks " + removed;
    }
}
