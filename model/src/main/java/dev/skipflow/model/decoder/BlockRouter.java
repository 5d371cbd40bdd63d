package dev.skipflow.model.decoder;

/**
 * Decides, block by block, which rows of a forward pass run the block; the others keep their hidden state
 * on the residual path and write no key/value there. What a router may see is narrow on purpose: the rows'
 * positions and, after each block, the attention they paid ({@link AttentionStats}), never the model's tensors.
 */
public interface BlockRouter {

    /**
     * Rows that are candidates for a block.
     *
     * @param prefill whether the pass is one sequence's prompt (rows in increasing position) or a decode step
     *     (one new token per sequence)
     * @param rows indices of the candidates in the pass
     * @param positions their positions in their sequences
     */
    record Candidates(boolean prefill, int[] rows, int[] positions) {}

    /** A pass over {@code rows} rows starts. */
    default void begin(boolean prefill, int rows) {}

    /** Per candidate, whether it runs block {@code layer}. */
    boolean[] keep(int layer, Candidates candidates);

    /** The attention paid in block {@code layer} by the rows that ran it (in {@code ran}'s order). */
    default void attended(int layer, Candidates ran, AttentionStats attention) {}

    /**
     * FLOPs of deciding one candidate's fate in block {@code layer} (a learned router's score; 0 for a
     * fixed rule), charged to routing's savings.
     */
    default long decisionFlops(int layer) {
        return 0;
    }

    /** The same in a prefill or a decode step, for routers that decide differently there. */
    default long decisionFlops(int layer, boolean prefill) {
        return decisionFlops(layer);
    }

    /**
     * Whether a row this router skips in a block still writes the block's key and value, projected from the hidden
     * state it carries (CALM's propagation, as for exited rows), so later rows attend to every earlier token in every
     * block; false (FTP): a skipped row writes nothing there. Costs the k|v projection per skipped token-block.
     */
    default boolean propagatesKeys() {
        return false;
    }

    /** Short description for reports. */
    String describe();
}
