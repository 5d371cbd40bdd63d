package dev.skipflow.model.routing;

import ai.djl.ndarray.NDArray;

/** A router that reads each block's attention probabilities (FTP's importance factor). */
public interface AttentionObserver {

    /** A new prefill of {@code length} tokens starts: forget the previous one. */
    void reset(int length);

    /** Attention probabilities {@code [kvHeads, rows, group, keys]} of the block just run over rows at {@code positions}. */
    void observe(NDArray probs, int[] rowPositions);

    /** A decode step over a batch of {@code rows} (one new token per sequence) starts. */
    default void resetDecode(int rows) {}

    /**
     * Attention probabilities {@code [rows, kvHeads, group, keys]} of a decode step's block, for the step's batch
     * rows {@code rows} (indices into the step's batch) at {@code rowPositions}.
     */
    default void observeDecode(NDArray probs, int[] rowPositions, int[] rows) {}
}
