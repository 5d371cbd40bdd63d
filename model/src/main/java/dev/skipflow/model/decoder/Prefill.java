package dev.skipflow.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.flops.FlopCounter;
import dev.skipflow.model.routing.AttentionObserver;
import dev.skipflow.model.routing.TokenRouter;

/**
 * One sequence's prompt through every block, in one pass per block, optionally routed: a block runs on the
 * rows its router keeps (gathered), their outputs are scattered back, and skipped rows keep their hidden
 * state and write no key/value. Charges the account for exactly what ran.
 */
public final class Prefill {

    private Prefill() {}

    /**
     * @param written per layer, keys this sequence has written so far (updated); its length is nLayers
     * @param router null for dense
     * @return the hidden states after the last block, {@code [n, dim]}, in the batch's manager
     */
    public static NDArray run(LlamaModel model, KvCache cache, TokenBatch batch, int[] tokens, TokenRouter router,
            FlopCounter flops, FlopAccount account, int[] written) {
        int n = batch.size();
        int[] positions = batch.positions();
        NDArray x = model.embed(batch, tokens);
        AttentionObserver observing = router instanceof AttentionObserver r ? r : null;
        if (observing != null) {
            observing.reset(n);
        }
        for (int l = 0; l < model.config().nLayers(); l++) {
            int[] rows = router == null ? null : router.keepPrefill(l, positions);
            if (rows == null || rows.length == n) {
                x = model.block(l, x, batch, cache, observing == null ? null : p -> observing.observe(p, positions));
                rows = null;
            } else if (rows.length > 0) {
                TokenBatch kept = batch.select(rows);
                NDArray index = batch.manager().create(LlamaModel.toLongs(rows));
                NDIndex at = new NDIndex("{}", index);
                NDArray out = model.block(l, x.get(at), kept, cache,
                        observing == null ? null : p -> observing.observe(p, kept.positions()));
                x.set(at, out); // x is this step's own tensor (a gather or a block output): update in place
            }
            charge(flops, account, positions, rows, l, written);
        }
        return x;
    }

    /** Dense cost of every row in block {@code layer}; executed cost of those in {@code rows} (null = all). */
    static void charge(FlopCounter flops, FlopAccount account, int[] positions, int[] rows, int layer, int[] written) {
        boolean[] ran = ranRows(positions.length, rows);
        for (int i = 0; i < positions.length; i++) {
            chargeBlock(flops, account, positions[i], ran[i], written, layer);
        }
    }

    /** Which of {@code n} rows ran, given the increasing indices that did (null = all). */
    static boolean[] ranRows(int n, int[] rows) {
        boolean[] ran = new boolean[n];
        if (rows == null) {
            java.util.Arrays.fill(ran, true);
        } else {
            for (int r : rows) {
                ran[r] = true;
            }
        }
        return ran;
    }

    /**
     * One token's block: its dense cost, and what ran, attention over the keys it really attended (those its
     * sequence wrote in this block, itself included); a skipped token is charged nothing and writes nothing.
     */
    static void chargeBlock(FlopCounter flops, FlopAccount account, int position, boolean ran, int[] written, int layer) {
        long dense = flops.block(position);
        if (ran) {
            account.add(dense, flops.blockAttending(written[layer] + 1), 0, 1);
            written[layer]++;
        } else {
            account.add(dense, 0, 1, 1);
        }
    }
}
