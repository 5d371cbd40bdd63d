package dev.skipflow.model.flops;

/**
 * What a request (or a window of requests) cost and what adaptive compute saved, as reported on the
 * {@code completions} and {@code metrics} topics. {@code experts}: for a mixture-of-experts model, per block the
 * tokens each expert took ({@code experts[l][e]}; an empty row for a dense block); null otherwise.
 * {@code byMethod}: {@code savedFraction} split by what saved it.
 */
public record Savings(
        long denseFlops,
        long executedFlops,
        double savedFraction,
        long tokenBlocksSkipped,
        long tokenBlocksTotal,
        long earlyExitTokens,
        double meanExitLayer,
        long[][] experts,
        ByMethod byMethod) {

    public static final Savings NONE = new Savings(0, 0, 0, 0, 0, 0, 0);

    /**
     * Fractions of {@code denseFlops} saved by each kind of method, summing to {@code savedFraction}: compression
     * (pruned, low-rank and expert shapes against the dense original), routing (blocks a router skipped, and keys
     * not attended because of them, less the router's cost), exit (blocks after an early exit less the probes'
     * and k/v propagation's cost). A method's share is negative when it cost more than it saved.
     */
    public record ByMethod(double compression, double routing, double exit) implements java.io.Serializable {
        public static final ByMethod NONE = new ByMethod(0, 0, 0);

        public double sum() {
            return compression + routing + exit;
        }
    }

    public Savings {
        if (byMethod == null) {
            byMethod = ByMethod.NONE;
        }
    }

    /** Savings of a model without a mixture of experts. */
    public Savings(long denseFlops, long executedFlops, double savedFraction, long tokenBlocksSkipped,
            long tokenBlocksTotal, long earlyExitTokens, double meanExitLayer) {
        this(denseFlops, executedFlops, savedFraction, tokenBlocksSkipped, tokenBlocksTotal, earlyExitTokens,
                meanExitLayer, null, null);
    }

    /**
     * Token-blocks not run, skipped by a router or after an early exit, as a share of all ("layers saved" in
     * AdaInfer's terms). {@code meanExitLayer} averages over every token, exited or not.
     */
    public double layersSavedFraction(int layers) {
        if (tokenBlocksTotal == 0) {
            return 0;
        }
        double exited = earlyExitTokens > 0 ? tokenBlocksTotal / (double) layers * (layers - meanExitLayer) : 0;
        return (tokenBlocksSkipped + exited) / tokenBlocksTotal;
    }
}
