package dev.skipflow.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import dev.skipflow.model.nn.Linear;
import dev.skipflow.model.nn.Tensors;
import java.util.function.Consumer;

/**
 * Grouped-query self-attention of one block with its own head counts, over the rows of a {@link TokenBatch}
 * and the keys/values in the {@link KvCache}. Its input is already normalized: the RMSNorm weight is folded
 * into {@code qkv} and {@code kv}, and the 1/sqrt(head size) scale into the query rows of {@code qkv}.
 */
final class Attention {

    private final int layer;
    private final Linear qkv; // [dim] -> [q | k | v]
    private final Linear wo; // [q] -> [dim]
    private final Linear kv; // [dim] -> [k | v], for tokens that exited before this block
    private final int heads;
    private final int kvHeads;
    private final int headSize;
    private final NDIndex qkColumns;
    private final NDIndex vColumns;
    private final NDIndex queryHeads;
    private final NDIndex keyHeads;
    private final NDIndex kColumnsOfKv;
    private final NDIndex vColumnsOfKv;

    Attention(int layer, Linear qkv, Linear wo, Linear kv, int heads, int kvHeads, int headSize) {
        this.layer = layer;
        this.qkv = qkv;
        this.wo = wo;
        this.kv = kv;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headSize = headSize;
        long q = (long) heads * headSize;
        long k = (long) kvHeads * headSize;
        qkColumns = Tensors.columns(0, q + k);
        vColumns = Tensors.columns(q + k, q + 2 * k);
        queryHeads = new NDIndex().addAllDim().addSliceDim(0, heads);
        keyHeads = new NDIndex().addAllDim().addSliceDim(heads, heads + kvHeads);
        kColumnsOfKv = Tensors.columns(0, k);
        vColumnsOfKv = Tensors.columns(k, 2 * k);
    }

    int heads() {
        return heads;
    }

    int kvHeads() {
        return kvHeads;
    }

    Linear qkv() {
        return qkv;
    }

    Linear wo() {
        return wo;
    }

    Linear kv() {
        return kv;
    }

    /** RoPE on {@code [n, heads, hd]} laid out as {@code [n, heads, hd/2, 2]}: x*cos + swap(x)*(-sin, +sin) per pair. */
    private NDArray rotate(NDArray x, TokenBatch batch, int n, int h) {
        NDArray pairs = x.reshape(n, h, headSize / 2, 2);
        return pairs.mul(batch.ropeCos()).add(pairs.flip(3).mul(batch.ropeSin())).reshape(n, h, headSize);
    }

    NDArray forward(NDArray xn, TokenBatch batch, KvCache cache, Consumer<AttentionStats> observer) {
        int n = batch.size();
        int g = heads / kvHeads;
        NDArray qkvOut = qkv.forward(xn);
        // q and k heads rotated together, one op chain for both
        NDArray rotated = rotate(qkvOut.get(qkColumns), batch, n, heads + kvHeads);
        NDArray q = rotated.get(queryHeads);
        NDArray k = rotated.get(keyHeads);
        NDArray v = qkvOut.get(vColumns).reshape(n, kvHeads, headSize);
        cache.write(layer, batch, k, v);
        TokenBatch span = batch.span();
        TokenBatch history = span != null ? span : batch;
        NDArray keys = cache.keys(layer, history);
        NDArray values = cache.values(layer, history);
        int t = history.context();
        NDArray written = cache.writtenMask(layer, history);
        NDArray mask = written == null ? history.mask() : history.mask().add(written);
        NDArray out;
        NDArray probs;
        if (span != null) {
            // a routed decode subset: its queries scattered into the whole batch's rows (the others zero), scored
            // against the cache's view of every slot, and the subset's rows taken back; the skipped rows' scores
            // are a few multiply-adds per key, cheaper than copying the kept rows' histories
            NDArray qs = q.getManager().zeros(new ai.djl.ndarray.types.Shape(span.size(), kvHeads, g, headSize));
            qs.set(batch.rowsOfSpan(), q.reshape(n, kvHeads, g, headSize));
            NDArray all = qs.matMul(keys.transpose(0, 1, 3, 2)).add(mask).softmax(-1); // [span, kvH, g, T]
            out = all.matMul(values).get(batch.rowsOfSpan()).reshape(n, (long) heads * headSize);
            probs = observer == null ? null
                    : all.get(batch.rowsOfSpan()).get(new NDIndex().addAllDim(3).addSliceDim(0, batch.context()));
        } else if (batch.isPrefill()) {
            // q [N, kvH*g, hd] -> [kvH, N*g, hd]; keys [kvH, T, hd]; one matmul per kv head group.
            NDArray qh = q.reshape(n, kvHeads, g, headSize).transpose(1, 0, 2, 3).reshape(kvHeads, (long) n * g, headSize);
            NDArray scores = qh.matMul(keys.transpose(0, 2, 1)).reshape(kvHeads, n, g, t);
            probs = scores.add(mask).softmax(-1); // [kvH, N, g, T]
            out = probs.reshape(kvHeads, (long) n * g, t).matMul(values).reshape(kvHeads, n, g, headSize)
                    .transpose(1, 0, 2, 3).reshape(n, (long) heads * headSize);
        } else {
            // q [N, kvH, g, hd] against each row's own history [N, kvH, T, hd].
            NDArray scores = q.reshape(n, kvHeads, g, headSize).matMul(keys.transpose(0, 1, 3, 2));
            probs = scores.add(mask).softmax(-1); // [N, kvH, g, T]
            out = probs.matMul(values).reshape(n, (long) heads * headSize);
        }
        if (observer != null) {
            observer.accept(new Stats(probs, batch.isPrefill(), heads, t));
        }
        // (Subnormal probabilities slow softmax 8x in a synthetic test with very peaked scores; a guard against
        // them measured slower on real text, so there is none.)
        return wo.forward(out);
    }

    /** Keys and values of this block computed from normalized hidden states, written without running the block. */
    void writeKeysValues(NDArray xn, TokenBatch batch, KvCache cache) {
        int n = batch.size();
        NDArray kvOut = kv.forward(xn);
        NDArray k = rotate(kvOut.get(kColumnsOfKv), batch, n, kvHeads);
        cache.write(layer, batch, k, kvOut.get(vColumnsOfKv).reshape(n, kvHeads, headSize));
    }

    /** Probabilities {@code [kvH, N, g, T]} (prefill) or {@code [N, kvH, g, T]} (decode), read out on demand. */
    private record Stats(NDArray probs, boolean prefill, int heads, int keys) implements AttentionStats {
        @Override
        public float[] receivedByKey() {
            return probs.sum(new int[] {0, 1, 2}).toFloatArray();
        }

        @Override
        public float[] byQueryRow() {
            return probs.sum(prefill ? new int[] {0, 2} : new int[] {1, 2}).toFloatArray();
        }
    }
}
