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
    // dense - executed, split by what saved it (each may go negative: a router's or a probe's own cost)
    private long compressionSaved;
    private long routingSaved;
    private long exitSaved;

    /**
     * Adds work whose dense cost and savings are known: what ran is {@code dense} less the three savings, so
     * {@code byMethod} always sums to the saved fraction.
     *
     * @param compression what the compressed model's shapes saved against the dense original (experts included)
     * @param routing what a router's skips saved (its own decisions' cost subtracted)
     * @param exit what early exits saved (probes, the classifier and k/v propagation subtracted)
     */
    public void charge(long dense, long compression, long routing, long exit, long skipped, long total) {
        denseFlops += dense;
        executedFlops += dense - compression - routing - exit;
        compressionSaved += compression;
        routingSaved += routing;
        exitSaved += exit;
        tokenBlocksSkipped += skipped;
        tokenBlocksTotal += total;
    }

    /** Adds a request's or a window's totals (an aggregate of completions). */
    public void add(Savings s) {
        denseFlops += s.denseFlops();
        executedFlops += s.executedFlops();
        compressionSaved += Math.round(s.byMethod().compression() * s.denseFlops());
        routingSaved += Math.round(s.byMethod().routing() * s.denseFlops());
        exitSaved += Math.round(s.byMethod().exit() * s.denseFlops());
        tokenBlocksSkipped += s.tokenBlocksSkipped();
        tokenBlocksTotal += s.tokenBlocksTotal();
        earlyExitTokens += s.earlyExitTokens();
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
        compressionSaved += other.compressionSaved;
        routingSaved += other.routingSaved;
        exitSaved += other.exitSaved;
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
        Savings.ByMethod byMethod = denseFlops == 0 ? Savings.ByMethod.NONE
                : new Savings.ByMethod((double) compressionSaved / denseFlops, (double) routingSaved / denseFlops,
                        (double) exitSaved / denseFlops);
        return new Savings(denseFlops, executedFlops, saved, tokenBlocksSkipped, tokenBlocksTotal,
                earlyExitTokens, meanExit, experts, byMethod);
    }
}
