package dev.skipflow.model.nn;

import ai.djl.ndarray.NDArray;

/** A block's MLP on normalized inputs {@code [rows, dim] -> [rows, dim]}. */
public interface Mlp {

    /**
     * @param flops per row, incremented by what that row cost here (a mixture of experts differs by the expert
     *     each token took); null when nobody counts
     */
    NDArray forward(NDArray xn, long[] flops);

    /**
     * As {@link #forward(NDArray, long[])}, and per row the expert it took into {@code experts} (a mixture of
     * experts; a dense MLP leaves it as it is). {@code experts} may be null.
     */
    default NDArray forward(NDArray xn, long[] flops, int[] experts) {
        return forward(xn, flops);
    }

    /** FLOPs of one token on average (exact for a gated MLP; a mixture of experts' router and mean expert). */
    long meanFlopsPerToken();

    /** Intermediate channels (all of them for a mixture of experts). */
    int hidden();

    /** Experts a token chooses among; 0 for a dense MLP. */
    default int experts() {
        return 0;
    }
}
