package dev.skipflow.model.routing;

import dev.skipflow.model.decoder.BlockRouter;

/**
 * Decides, block by block, which tokens run the block; the others pass through on the residual path and
 * write no key/value there (later tokens do not attend to them in that block), unless the router propagates them
 * ({@link #propagatingKeys()}). A prefill ranks one
 * sequence's tokens against each other; a decode step decides for each sequence's new token alone.
 */
public interface TokenRouter extends BlockRouter {

    @Override
    default boolean[] keep(int layer, Candidates c) {
        int n = c.positions().length;
        if (c.prefill()) {
            boolean[] keep = new boolean[n];
            for (int r : keepPrefill(layer, c.positions())) {
                keep[r] = true;
            }
            return keep;
        }
        boolean[] keep = keepDecode(layer, c.positions(), c.rows());
        if (keep == null) {
            keep = new boolean[n];
            java.util.Arrays.fill(keep, true);
        }
        return keep;
    }

    /**
     * Rows of a prefill (one sequence, rows in increasing position) that run block {@code layer}, as
     * increasing row indices.
     */
    int[] keepPrefill(int layer, int[] positions);

    /** Whether each decode row (one new token per sequence) runs block {@code layer}; null = all. */
    default boolean[] keepDecode(int layer, int[] positions) {
        return null;
    }

    /**
     * The same, with each row's index in the step's batch ({@code rows}), for routers that carry what they
     * observed of a row from block to block within a decode step.
     */
    default boolean[] keepDecode(int layer, int[] positions, int[] rows) {
        return keepDecode(layer, positions);
    }

    /**
     * The same decisions, but the tokens skipped in a block still write its key and value from the hidden state they
     * carry ({@link #propagatesKeys()}), at the cost of that projection.
     */
    default TokenRouter propagatingKeys() {
        return propagatesKeys() ? this : new KeyPropagatingRouter(this);
    }

    /** The {@code keep} rows with the highest scores, as increasing indices; {@code forced} (or -1) is always kept. */
    static int[] topK(float[] scores, int keep, int forced) {
        int n = scores.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (a, b) -> Float.compare(scores[b], scores[a]));
        int[] rows = new int[keep];
        int at = 0;
        if (forced >= 0 && keep > 0) {
            rows[at++] = forced;
        }
        for (int i = 0; at < keep; i++) {
            if (order[i] != forced) {
                rows[at++] = order[i];
            }
        }
        java.util.Arrays.sort(rows);
        return rows;
    }

    /** All rows, as indices. */
    static int[] all(int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) {
            r[i] = i;
        }
        return r;
    }
}
