package dev.skipflow.model.eval;

import ai.djl.ndarray.NDManager;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.routing.TokenRouter;
import dev.skipflow.model.sampling.Sampler;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * How much sparsity is there to find? Skips one token-block at a time (token p in block l, no key/value
 * there) and checks whether every position's top-1 prediction stays the dense one. The share of such "free"
 * token-blocks per block bounds, roughly, what a router can skip at full agreement (interactions ignored).
 */
public final class SkipOracle {

    /** Per block: token-blocks tried, and those whose skip changed no top-1 anywhere. */
    public record Result(long[] tried, long[] free) {
        public double freeFraction() {
            long t = 0;
            long f = 0;
            for (int l = 0; l < tried.length; l++) {
                t += tried[l];
                f += free[l];
            }
            return t == 0 ? 0 : f / (double) t;
        }
    }

    private SkipOracle() {}

    public static Result measure(LlamaModel model, List<int[]> docs, IntConsumer progress) {
        int layers = model.spec().nLayers();
        long[] tried = new long[layers];
        long[] free = new long[layers];
        int maxLen = docs.stream().mapToInt(d -> d.length).max().orElse(1);
        try (KvCache cache = new KvCache(model, 1, maxLen, true)) {
            int done = 0;
            for (int[] doc : docs) {
                int[] dense = new int[doc.length];
                int[] skipped = new int[doc.length];
                nll(model, cache, doc, null, dense);
                for (int l = 0; l < layers; l++) {
                    for (int p = 0; p < doc.length; p++) {
                        nll(model, cache, doc, skipOne(l, p), skipped);
                        tried[l]++;
                        free[l] += java.util.Arrays.equals(dense, skipped) ? 1 : 0;
                    }
                }
                progress.accept(++done);
            }
        }
        return new Result(tried, free);
    }

    /**
     * How much each token-block matters: for each block l and token p, the change in the document's summed NLL
     * (DESIGN §6, every position) when p alone skips l. {@code [layers][n]}; negative means skipping helped.
     */
    public static float[][] damage(LlamaModel model, int[] doc) {
        return costs(model, doc).damage();
    }

    /**
     * How much each token-block matters for agreement: the number of positions whose top-1 its skip alone
     * changes, ties broken by the NLL it adds (scaled into [0, 0.5), so a flip always outweighs any damage).
     * {@code [layers][n]}; the router's guide toward agreement, where {@link #damage} leads toward perplexity.
     */
    public static float[][] agreementCost(LlamaModel model, int[] doc) {
        Costs c = costs(model, doc);
        float lo = Float.POSITIVE_INFINITY;
        float hi = Float.NEGATIVE_INFINITY;
        for (float[] row : c.damage()) {
            for (float d : row) {
                lo = Math.min(lo, d);
                hi = Math.max(hi, d);
            }
        }
        float[][] cost = new float[c.damage().length][];
        for (int l = 0; l < cost.length; l++) {
            cost[l] = new float[c.damage()[l].length];
            for (int p = 0; p < cost[l].length; p++) {
                cost[l][p] = c.flips()[l][p] + 0.5f * (c.damage()[l][p] - lo) / Math.max(1e-6f, hi - lo + 1e-6f);
            }
        }
        return cost;
    }

    /**
     * Per token-block of one document ({@code [layers][n]}): the change in summed NLL when it alone is skipped
     * ({@link #damage}), and how many positions' top-1 that skip changes.
     */
    public record Costs(float[][] damage, int[][] flips) {}

    public static Costs costs(LlamaModel model, int[] doc) {
        int layers = model.spec().nLayers();
        float[][] damage = new float[layers][doc.length];
        int[][] flips = new int[layers][doc.length];
        try (KvCache cache = new KvCache(model, 1, doc.length, true)) {
            int[] denseTop = new int[doc.length];
            double dense = nll(model, cache, doc, null, denseTop);
            int[] top = new int[doc.length];
            for (int l = 0; l < layers; l++) {
                for (int p = 0; p < doc.length; p++) {
                    damage[l][p] = (float) (nll(model, cache, doc, skipOne(l, p), top) - dense);
                    for (int t = 0; t < doc.length; t++) {
                        flips[l][p] += top[t] != denseTop[t] ? 1 : 0;
                    }
                }
            }
        }
        return new Costs(damage, flips);
    }

    /** Dense and oracle-routed totals over the documents, with top-1 agreement and the share of token-blocks skipped. */
    public record Routed(double densePerplexity, double perplexity, double agreement, double skippedFraction) {}

    /**
     * What a router that knew each token-block's cost could keep: every document is measured with {@link #costs}
     * and then run skipping its {@code sparsity} share of token-blocks with the least damage, jointly (the
     * costs were measured one skip at a time, so this is an achievable point, not a bound).
     */
    public static Routed routeByDamage(LlamaModel model, List<int[]> docs, double sparsity, IntConsumer progress) {
        return route(model, docs, sparsity, false, progress);
    }

    /**
     * The same, choosing first the token-blocks whose skip alone changes the fewest top-1 predictions (the skip
     * oracle's "free" ones first), then by damage: the agreement-minded oracle.
     */
    public static Routed routeByFlips(LlamaModel model, List<int[]> docs, double sparsity, IntConsumer progress) {
        return route(model, docs, sparsity, true, progress);
    }

    private static Routed route(LlamaModel model, List<int[]> docs, double sparsity, boolean byFlips,
            IntConsumer progress) {
        PerplexityEvaluator evaluator = new PerplexityEvaluator(model);
        double denseNll = 0;
        double nll = 0;
        double agree = 0;
        long predicted = 0;
        long skipped = 0;
        long total = 0;
        int done = 0;
        for (int[] doc : docs) {
            if (doc.length < 2) {
                continue;
            }
            Costs c0 = costs(model, doc);
            boolean[][] skip = cheapest(c0.damage(), byFlips ? c0.flips() : null, sparsity);
            var c = evaluator.compare(List.of(doc), skipping(skip), i -> { });
            denseNll += c.dense().nll();
            nll += c.routed().nll();
            agree += c.agreement() * c.dense().predictedTokens();
            predicted += c.dense().predictedTokens();
            skipped += c.routed().flops().savings().tokenBlocksSkipped();
            total += c.routed().flops().savings().tokenBlocksTotal();
            progress.accept(++done);
        }
        return new Routed(Math.exp(denseNll / predicted), Math.exp(nll / predicted), agree / predicted,
                skipped / (double) total);
    }

    /**
     * The {@code share} of (block, token) pairs with the fewest {@code flips} (when given), then the least damage,
     * as {@code [layers][n]} flags.
     */
    static boolean[][] cheapest(float[][] damage, int[][] flips, double share) {
        int layers = damage.length;
        int n = damage[0].length;
        Integer[] order = new Integer[layers * n];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (a, b) -> {
            int byFlips = flips == null ? 0 : Integer.compare(flips[a / n][a % n], flips[b / n][b % n]);
            return byFlips != 0 ? byFlips : Float.compare(damage[a / n][a % n], damage[b / n][b % n]);
        });
        boolean[][] skip = new boolean[layers][n];
        for (int i = 0; i < (int) Math.round(share * order.length); i++) {
            skip[order[i] / n][order[i] % n] = true;
        }
        return skip;
    }

    private static TokenRouter skipping(boolean[][] skip) {
        return new TokenRouter() {
            @Override
            public int[] keepPrefill(int layer, int[] positions) {
                int[] rows = new int[positions.length];
                int k = 0;
                for (int i = 0; i < positions.length; i++) {
                    if (!skip[layer][positions[i]]) {
                        rows[k++] = i;
                    }
                }
                return java.util.Arrays.copyOf(rows, k);
            }

            @Override
            public String describe() {
                return "skip oracle";
            }
        };
    }

    /** The document's summed NLL with {@code router}; {@code top} receives each position's top-1. */
    private static double nll(LlamaModel model, KvCache cache, int[] doc, TokenRouter router, int[] top) {
        try (NDManager step = model.newStepManager()) {
            cache.clearSlot(0);
            List<Forward.Row> rows = Forward.prompt(0, 0, doc, null, new int[model.spec().nLayers()], true, doc.length, 0);
            int v = model.spec().vocabSize();
            float[] logits = Forward.run(model, cache, step, true, rows, Forward.Plan.routed(router)).allLogits();
            double nll = 0;
            for (int t = 0; t + 1 < doc.length; t++) {
                nll -= PerplexityEvaluator.logProb(logits, t * v, v, doc[t + 1]);
            }
            for (int t = 0; t < doc.length; t++) {
                top[t] = Sampler.argmax(logits, t * v, v);
            }
            return nll;
        }
    }

    private static TokenRouter skipOne(int layer, int row) {
        return new TokenRouter() {
            @Override
            public int[] keepPrefill(int l, int[] positions) {
                if (l != layer) {
                    return TokenRouter.all(positions.length);
                }
                int[] rows = new int[positions.length - 1];
                for (int i = 0, k = 0; i < positions.length; i++) {
                    if (i != row) {
                        rows[k++] = i;
                    }
                }
                return rows;
            }

            @Override
            public String describe() {
                return "skip token " + row + " in block " + layer;
            }
        };
    }
}
