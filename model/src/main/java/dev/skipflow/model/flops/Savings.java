package dev.skipflow.model.flops;

/**
 * What a request (or a window of requests) cost and what adaptive compute saved, as reported on the
 * {@code completions} and {@code metrics} topics. {@code experts}: for a mixture-of-experts model, per block the
 * tokens each expert took ({@code experts[l][e]}; an empty row for a dense block); null otherwise.
 */
public record Savings(
        long denseFlops,
        long executedFlops,
        double savedFraction,
        long tokenBlocksSkipped,
        long tokenBlocksTotal,
        long earlyExitTokens,
        double meanExitLayer,
        long[][] experts) {

    public static final Savings NONE = new Savings(0, 0, 0, 0, 0, 0, 0);

    /** Savings of a model without a mixture of experts. */
    public Savings(long denseFlops, long executedFlops, double savedFraction, long tokenBlocksSkipped,
            long tokenBlocksTotal, long earlyExitTokens, double meanExitLayer) {
        this(denseFlops, executedFlops, savedFraction, tokenBlocksSkipped, tokenBlocksTotal, earlyExitTokens,
                meanExitLayer, null);
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
