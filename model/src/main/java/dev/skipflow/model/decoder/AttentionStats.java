package dev.skipflow.model.decoder;

/**
 * What a block's attention did, in a layout that does not depend on the pass (prefill or decode) or on the
 * model's tensors: per query row and key, the probability paid, summed over heads. Computed on demand.
 */
public interface AttentionStats {

    /** Query heads of the block. */
    int heads();

    /** Keys attended (the context of the step). */
    int keys();

    /** Per key, the attention it received, summed over heads and query rows: {@code [keys]}. */
    float[] receivedByKey();

    /** Per query row (in the order of the rows that ran) and key, summed over heads: {@code [rows * keys]}, row-major. */
    float[] byQueryRow();
}
