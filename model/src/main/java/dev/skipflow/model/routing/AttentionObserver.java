package dev.skipflow.model.routing;

import ai.djl.ndarray.NDArray;

/** A router that reads each block's attention probabilities during a prefill (FTP's importance factor). */
public interface AttentionObserver {

    /** A new prefill of {@code length} tokens starts: forget the previous one. */
    void reset(int length);

    /** Attention probabilities {@code [kvHeads, rows, group, keys]} of the block just run over rows at {@code positions}. */
    void observe(NDArray probs, int[] rowPositions);
}
