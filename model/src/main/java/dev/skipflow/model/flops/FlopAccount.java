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
    private long[][] expertTokens; // [layer][expert], for a mixture-of-experts model; null until one is counted

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

    /** A token's MLP in block {@code layer} (of {@code layers}) ran expert {@code expert} (of {@code experts}). */
    public void expert(int layer, int expert, int layers, int experts) {
        if (expertTokens == null) {
            expertTokens = new long[layers][];
        }
        if (expertTokens[layer] == null) {
            expertTokens[layer] = new long[experts];
        }
        expertTokens[layer][expert]++;
    }

    public void addAll(FlopAccount other) {
        if (other.expertTokens != null) {
            for (int l = 0; l < other.expertTokens.length; l++) {
                long[] o = other.expertTokens[l];
                if (o == null) {
                    continue;
                }
                if (expertTokens == null) {
                    expertTokens = new long[other.expertTokens.length][];
                }
                if (expertTokens[l] == null) {
                    expertTokens[l] = new long[o.length];
                }
                for (int e = 0; e < o.length; e++) {
                    expertTokens[l][e] += o[e];
                }
            }
        }
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
        long[][] experts = null;
        if (expertTokens != null) {
            experts = new long[expertTokens.length][];
            for (int l = 0; l < experts.length; l++) {
                experts[l] = expertTokens[l] == null ? new long[0] : expertTokens[l].clone();
            }
        }
        return new Savings(denseFlops, executedFlops, saved, tokenBlocksSkipped, tokenBlocksTotal,
                earlyExitTokens, meanExit, experts);
    }
}
