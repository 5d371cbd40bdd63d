package dev.skipflow.model.routing;

import dev.skipflow.model.decoder.AttentionStats;

/**
 * Another router's decisions, but the tokens it skips still write each block's key and value, projected from the
 * hidden state they carry ({@link dev.skipflow.model.decoder.BlockRouter#propagatesKeys()}).
 */
record KeyPropagatingRouter(TokenRouter inner) implements TokenRouter {

    @Override
    public void begin(boolean prefill, int rows) {
        inner.begin(prefill, rows);
    }

    @Override
    public boolean[] keep(int layer, Candidates candidates) {
        return inner.keep(layer, candidates);
    }

    @Override
    public int[] keepPrefill(int layer, int[] positions) {
        return inner.keepPrefill(layer, positions);
    }

    @Override
    public boolean[] keepDecode(int layer, int[] positions, int[] rows) {
        return inner.keepDecode(layer, positions, rows);
    }

    @Override
    public void attended(int layer, Candidates ran, AttentionStats attention) {
        inner.attended(layer, ran, attention);
    }

    @Override
    public long decisionFlops(int layer) {
        return inner.decisionFlops(layer);
    }

    @Override
    public long decisionFlops(int layer, boolean prefill) {
        return inner.decisionFlops(layer, prefill);
    }

    @Override
    public boolean propagatesKeys() {
        return true;
    }

    @Override
    public String describe() {
        return inner.describe() + ", skipped keys propagated";
    }
}
