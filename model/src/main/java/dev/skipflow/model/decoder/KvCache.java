package dev.skipflow.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.skipflow.model.LlamaConfig;

/**
 * Keys and values of every layer, preallocated as {@code [slots, kvHeads, context, headSize]} so that a
 * decode step reads each sequence's history as a strided view (no copy) and writes new rows in place.
 * A sequence owns one slot for its lifetime; slots are recycled by the engine.
 */
public final class KvCache implements AutoCloseable {

    private final NDManager manager;
    private final NDArray[] keys;
    private final NDArray[] values;
    private final int slots;
    private final int context;

    public KvCache(LlamaModel model, int slots, int context) {
        LlamaConfig c = model.config();
        if (slots <= 0) {
            throw new IllegalArgumentException("KV cache needs at least one slot, got " + slots);
        }
        if (context <= 0 || context > c.seqLen()) {
            throw new IllegalArgumentException("KV cache context " + context + " must be in 1.." + c.seqLen()
                    + " (the model's seq_len)");
        }
        this.slots = slots;
        this.context = context;
        this.manager = model.manager().newSubManager();
        Shape shape = new Shape(slots, c.nKvHeads(), context, c.headSize());
        keys = new NDArray[c.nLayers()];
        values = new NDArray[c.nLayers()];
        for (int l = 0; l < c.nLayers(); l++) {
            keys[l] = manager.zeros(shape);
            values[l] = manager.zeros(shape);
        }
    }

    public int slots() {
        return slots;
    }

    public int context() {
        return context;
    }

    /** Writes rows {@code k, v [N, kvHeads, headSize]} at (slot, position) of each row. */
    void write(int layer, TokenBatch batch, NDArray k, NDArray v) {
        keys[layer].set(batch.writeIndex(), k);
        values[layer].set(batch.writeIndex(), v);
    }

    /** Keys of the batch's slots up to its context, {@code [slots of batch, kvHeads, T, headSize]}. */
    NDArray keys(int layer, TokenBatch batch) {
        return history(keys[layer], batch);
    }

    NDArray values(int layer, TokenBatch batch) {
        return history(values[layer], batch);
    }

    private NDArray history(NDArray cache, TokenBatch batch) {
        NDArray out;
        if (batch.historyView() != null) {
            out = cache.get(batch.historyView());
        } else {
            NDArray window = cache.get(batch.historyWindow());
            out = window.get(batch.slotGather());
            window.close();
        }
        out.attach(batch.manager());
        return out;
    }

    /** Copies a slot's first {@code length} positions into another slot (compaction of the running batch). */
    public void copySlot(int from, int to, int length) {
        if (from == to || length <= 0) {
            return;
        }
        for (NDArray[] arrays : new NDArray[][] {keys, values}) {
            for (NDArray cache : arrays) {
                try (NDArray src = cache.get(new NDIndex(from).addAllDim().addSliceDim(0, length))) {
                    cache.set(new NDIndex(to).addAllDim().addSliceDim(0, length), src);
                }
            }
        }
    }

    @Override
    public void close() {
        manager.close();
    }
}
