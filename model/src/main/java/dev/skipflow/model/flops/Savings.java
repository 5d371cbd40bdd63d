package dev.skipflow.model.flops;

/**
 * What a request (or a window of requests) cost and what adaptive compute saved, as reported on the
 * {@code completions} and {@code metrics} topics.
 */
public record Savings(
        long denseFlops,
        long executedFlops,
        double savedFraction,
        long tokenBlocksSkipped,
        long tokenBlocksTotal,
        long earlyExitTokens,
        double meanExitLayer) {

    public static final Savings NONE = new Savings(0, 0, 0, 0, 0, 0, 0);
}
