package dev.skipflow.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.skipflow.model.spec.ModelSpec;

/**
 * Keys and values of every layer, preallocated as {@code [slots, kvHeads of the block, context, headSize]} so that a
 * decode step reads each sequence's history as a strided view (no copy) and writes new rows in place.
 * A sequence owns one slot for its lifetime; slots are recycled by the engine.
 */
public final class KvCache implements AutoCloseable {

    private final NDManager manager;
    private final NDArray[] keys;
    private final NDArray[] values;
    /** Per layer [slots, context]: 0 where a key/value was written, -inf where not; null when not tracked. */
    private final NDArray[] written;
    private final int slots;
    private final int context;

    public KvCache(LlamaModel model, int slots, int context) {
        this(model, slots, context, false);
    }

    /**
     * @param trackWritten remember which (layer, position) entries hold keys/values, for adaptive compute: a
     *     token that skips a block (or exits before it) writes nothing there, and later tokens must not attend
     *     to whatever an earlier occupant of the slot left at that position
     */
    public KvCache(LlamaModel model, int slots, int context, boolean trackWritten) {
        ModelSpec c = model.spec();
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
        keys = new NDArray[c.nLayers()];
        values = new NDArray[c.nLayers()];
        written = trackWritten ? new NDArray[c.nLayers()] : null;
        for (int l = 0; l < c.nLayers(); l++) {
            Shape shape = new Shape(slots, c.block(l).kvHeads(), context, c.headSize()); // each block its own kv heads
            keys[l] = manager.zeros(shape);
            values[l] = manager.zeros(shape);
            if (trackWritten) {
                written[l] = manager.full(new Shape(slots, context), Float.NEGATIVE_INFINITY);
            }
        }
    }

    /** Forgets what a slot held (a new sequence takes it); only needed when writes are tracked. */
    public void clearSlot(int slot) {
        if (written != null) {
            for (NDArray w : written) {
                w.set(new NDIndex(slot), Float.NEGATIVE_INFINITY);
            }
        }
    }

    /**
     * Additive mask of the batch's history, 0 where written, -inf where not: {@code [N, 1, 1, T]} for decode,
     * {@code [1, 1, T]} for prefill; null when writes are not tracked.
     */
    NDArray writtenMask(int layer, TokenBatch batch) {
        if (written == null) {
            return null;
        }
        NDArray out;
        int t = batch.context();
        if (batch.isPrefill()) {
            out = written[layer].get(new NDIndex(batch.slots()[0]).addSliceDim(0, t)).reshape(1, 1, t);
        } else if (batch.historyView() != null) {
            out = written[layer].get(new NDIndex().addSliceDim(0, batch.size()).addSliceDim(0, t))
                    .reshape(batch.size(), 1, 1, t);
        } else {
            NDArray window = written[layer].get(new NDIndex().addAllDim().addSliceDim(0, t));
            out = window.get(batch.slotGather()).reshape(batch.size(), 1, 1, t);
            window.close();
        }
        out.attach(batch.manager());
        return out;
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
        if (written != null) {
            written[layer].set(batch.positionWriteIndex(), 0f);
        }
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
        if (written != null) {
            for (NDArray w : written) {
                try (NDArray src = w.get(new NDIndex(from))) {
                    w.set(new NDIndex(to), src);
                }
            }
        }
    }

    @Override
    public void close() {
        manager.close();
    }
}
