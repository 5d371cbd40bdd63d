package dev.skipflow.model.flops;

/**
 * Running totals for one request or an aggregate: FLOPs of what ran next to FLOPs of the same work done
 * densely, token-blocks skipped, and early exits. Mutable; owned by one thread.
 */
public final class FlopAccount implements java.io.Serializable {

    private long denseFlops;
    private long executedFlops;
    private long tokenBlocksSkipped;
    private long tokenBlocksTotal;
    private long exitTokens;
    private long earlyExitTokens;
    private long exitLayerSum;

    /** Adds work measured elsewhere: dense cost, what ran, and the token-blocks skipped out of total. */
    public void add(long dense, long executed, long skipped, long total) {
        denseFlops += dense;
        executedFlops += executed;
        tokenBlocksSkipped += skipped;
        tokenBlocksTotal += total;
    }

    /** A generated token's exit layer (1-based count of layers run); early when below {@code layers}. */
    public void exit(int layersRun, int layers) {
        exitTokens++;
        exitLayerSum += layersRun;
        if (layersRun < layers) {
            earlyExitTokens++;
        }
    }

    public void addAll(FlopAccount other) {
        denseFlops += other.denseFlops;
        executedFlops += other.executedFlops;
        tokenBlocksSkipped += other.tokenBlocksSkipped;
        tokenBlocksTotal += other.tokenBlocksTotal;
        exitTokens += other.exitTokens;
        earlyExitTokens += other.earlyExitTokens;
        exitLayerSum += other.exitLayerSum;
    }

    public long denseFlops() {
        return denseFlops;
    }

    public long executedFlops() {
        return executedFlops;
    }

    public Savings savings() {
        double saved = denseFlops == 0 ? 0 : 1.0 - (double) executedFlops / denseFlops;
        double meanExit = exitTokens == 0 ? 0 : (double) exitLayerSum / exitTokens;
        return new Savings(denseFlops, executedFlops, saved, tokenBlocksSkipped, tokenBlocksTotal,
                earlyExitTokens, meanExit);
    }
}
