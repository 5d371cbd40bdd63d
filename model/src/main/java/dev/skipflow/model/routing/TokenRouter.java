package dev.skipflow.model.routing;

/**
 * Decides, block by block, which tokens run the block; the others pass through on the residual path and
 * write no key/value there (later tokens do not attend to them in that block).
 */
public interface TokenRouter {

    /**
     * Rows of a prefill (one sequence, rows in increasing position) that run block {@code layer}, as
     * increasing row indices.
     */
    int[] keepPrefill(int layer, int[] positions);

    /** Whether each decode row (one new token per sequence) runs block {@code layer}; null = all. */
    default boolean[] keepDecode(int layer, int[] positions) {
        return null;
    }

    /** Short description for reports. */
    String describe();

    /** All rows, as indices. */
    static int[] all(int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) {
            r[i] = i;
        }
        return r;
    }
}
