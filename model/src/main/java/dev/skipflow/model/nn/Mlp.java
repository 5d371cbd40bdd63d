package dev.skipflow.model.nn;

import ai.djl.ndarray.NDArray;

/** A block's MLP on normalized inputs {@code [rows, dim] -> [rows, dim]}. */
public interface Mlp {

    /**
     * @param flops per row, incremented by what that row cost here (a mixture of experts differs by the expert
     *     each token took); null when nobody counts
     */
    NDArray forward(NDArray xn, long[] flops);

    /** FLOPs of one token on average (exact for a gated MLP; a mixture of experts' router and mean expert). */
    long meanFlopsPerToken();

    /** Intermediate channels (all of them for a mixture of experts). */
    int hidden();
}
