package dev.skipflow.model.compression.prune;

import dev.skipflow.model.spec.BlockSpec;
import dev.skipflow.model.weights.BlockWeights;
import dev.skipflow.model.weights.MlpWeights;
import dev.skipflow.model.weights.Slicing;

/**
 * Removes coupled groups from a block physically: for each KV head dropped, its k and v rows, its {@code n_rep}
 * query heads' q rows and the matching o columns; for each MLP channel dropped, its gate and up rows and down
 * column. Head size, the model width, norms and embeddings are untouched, so RoPE and the residual stream are too.
 */
public final class GroupRemoval {

    private GroupRemoval() {}

    /**
     * @param keptKvHeads KV heads to keep, increasing
     * @param keptChannels MLP channels to keep, increasing
     */
    public static BlockWeights keep(BlockWeights b, BlockSpec spec, int headSize, int[] keptKvHeads, int[] keptChannels) {
        requireIncreasing(keptKvHeads, spec.kvHeads(), "kv heads");
        requireIncreasing(keptChannels, spec.mlpHidden(), "MLP channels");
        if (!(b.mlp() instanceof MlpWeights.Gated g)) {
            throw new IllegalArgumentException("only a gated MLP's channels can be removed");
        }
        int rep = spec.heads() / spec.kvHeads();
        int[] qRows = new int[keptKvHeads.length * rep * headSize];
        int[] kvRows = new int[keptKvHeads.length * headSize];
        for (int i = 0; i < keptKvHeads.length; i++) {
            int group = keptKvHeads[i];
            for (int j = 0; j < rep * headSize; j++) {
                qRows[i * rep * headSize + j] = group * rep * headSize + j;
            }
            for (int j = 0; j < headSize; j++) {
                kvRows[i * headSize + j] = group * headSize + j;
            }
        }
        return new BlockWeights(b.rmsAtt(), Slicing.rows(b.wq(), qRows), Slicing.rows(b.wk(), kvRows),
                Slicing.rows(b.wv(), kvRows), Slicing.columns(b.wo(), qRows), b.rmsFfn(),
                new MlpWeights.Gated(Slicing.rows(g.gate(), keptChannels), Slicing.rows(g.up(), keptChannels),
                        Slicing.columns(g.down(), keptChannels)));
    }

    private static void requireIncreasing(int[] keep, int of, String what) {
        if (keep.length == 0) {
            throw new IllegalArgumentException("a block must keep at least one of its " + what);
        }
        int last = -1;
        for (int k : keep) {
            if (k <= last || k >= of) {
                throw new IllegalArgumentException("kept " + what + " must be increasing in 0.." + (of - 1));
            }
            last = k;
        }
    }

    /** The {@code count} highest-scoring indices, increasing (ties: the lower index). */
    public static int[] top(double[] scores, int count) {
        Integer[] order = new Integer[scores.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (a, b) -> {
            int c = Double.compare(scores[b], scores[a]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        int[] out = new int[count];
        for (int i = 0; i < count; i++) {
            out[i] = order[i];
        }
        java.util.Arrays.sort(out);
        return out;
    }
}
