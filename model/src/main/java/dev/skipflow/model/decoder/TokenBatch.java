package dev.skipflow.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.skipflow.model.nn.Tensors;
import java.util.Arrays;

/**
 * The rows one forward pass works on, each a token at (slot, position), with what every layer needs about
 * them computed once: index arrays, RoPE rotations and the attention mask. Two kinds:
 * <ul>
 *   <li>decode: one row per sequence, each in its own slot, positions may differ;</li>
 *   <li>prefill: rows of a single slot, in increasing positions (a prompt, or a subset of one).</li>
 * </ul>
 * {@link #select(int[])} keeps a subset of rows, so a block can run on only the tokens a router keeps.
 * All arrays belong to {@link #manager()}, which the caller closes after the step.
 */
public final class TokenBatch {

    private final LlamaModel model;
    private final NDManager manager;
    private final int[] slots;
    private final int[] positions;
    private final boolean prefill;
    private final int context;
    private final boolean leadingRange;
    private final NDArray slotIndex;
    private final NDArray positionIndex;
    private final NDArray ropeCos;
    private final NDArray ropeSin;
    private final NDArray mask;
    private final NDIndex writeIndex;
    private final NDIndex positionWriteIndex;
    private final NDIndex historyView;
    private final NDIndex historyWindow;
    private final NDIndex slotGather;
    private final TokenBatch span; // a decode subset's whole batch, when its histories are one view of the cache
    private final NDIndex rowsOfSpan;

    private TokenBatch(LlamaModel model, NDManager manager, int[] slots, int[] positions, boolean prefill) {
        this(model, manager, slots, positions, prefill, null, null, null);
    }

    private TokenBatch(LlamaModel model, NDManager manager, int[] slots, int[] positions, boolean prefill,
            boolean[] hiddenKeys, TokenBatch span, int[] rowsOfSpan) {
        if (slots.length != positions.length || slots.length == 0) {
            throw new IllegalArgumentException("a token batch needs one slot and one position per row, at least one row");
        }
        this.model = model;
        this.manager = manager;
        this.slots = slots;
        this.positions = positions;
        this.prefill = prefill;
        int max = 0;
        boolean leading = true;
        for (int i = 0; i < slots.length; i++) {
            max = Math.max(max, positions[i]);
            leading &= slots[i] == i;
        }
        this.context = max + 1;
        this.leadingRange = leading && !prefill;
        long[] s = new long[slots.length];
        long[] p = new long[slots.length];
        for (int i = 0; i < slots.length; i++) {
            s[i] = slots[i];
            p[i] = positions[i];
        }
        this.slotIndex = manager.create(s);
        this.positionIndex = manager.create(p);
        NDIndex rows = new NDIndex("{}", positionIndex);
        int n = slots.length;
        int half = model.spec().headSize() / 2;
        // [N, 1, hd/2, 2]: broadcast over heads, each pair (2i, 2i+1) rotated by the same angle.
        this.ropeCos = owned(model.ropeCos().get(rows)).reshape(n, 1, half, 2);
        this.ropeSin = owned(model.ropeSin().get(rows)).reshape(n, 1, half, 2);
        this.mask = buildMask(hiddenKeys);
        // Index objects are built once per step and shared by every layer.
        this.writeIndex = new NDIndex("{}, :, {}", slotIndex, positionIndex);
        this.positionWriteIndex = new NDIndex("{}, {}", slotIndex, positionIndex);
        if (prefill) {
            historyView = new NDIndex(slots[0]).addAllDim().addSliceDim(0, context);
        } else if (leadingRange) {
            historyView = new NDIndex().addSliceDim(0, slots.length).addAllDim().addSliceDim(0, context);
        } else {
            historyView = null;
        }
        historyWindow = new NDIndex().addAllDim().addAllDim().addSliceDim(0, context);
        slotGather = new NDIndex("{}", slotIndex);
        this.span = span;
        this.rowsOfSpan = span == null ? null : new NDIndex("{}", manager.create(Tensors.toLongs(rowsOfSpan)));
    }

    /** One row per sequence: row i is the token at {@code positions[i]} of the sequence in {@code slots[i]}. */
    public static TokenBatch decode(LlamaModel model, NDManager manager, int[] slots, int[] positions) {
        return new TokenBatch(model, manager, slots.clone(), positions.clone(), false);
    }

    /** {@code length} consecutive tokens of one sequence, from {@code start}. */
    public static TokenBatch prefill(LlamaModel model, NDManager manager, int slot, int start, int length) {
        int[] s = new int[length];
        int[] p = new int[length];
        Arrays.fill(s, slot);
        for (int i = 0; i < length; i++) {
            p[i] = start + i;
        }
        return new TokenBatch(model, manager, s, p, true);
    }

    /**
     * The same prefill rows, but no row attends to the keys at positions marked in {@code hiddenKeys} (other
     * than its own): a block as if those tokens had skipped it, while still computing every row (training).
     */
    public TokenBatch hidingKeys(boolean[] hiddenKeys) {
        if (!prefill) {
            throw new IllegalStateException("hidingKeys is for prefill batches");
        }
        return new TokenBatch(model, manager, slots, positions, true, hiddenKeys, null, null);
    }

    /**
     * The same kind of batch over rows {@code rows} (increasing) of this one. A decode subset of a batch whose slots
     * are the cache's leading ones, keeping at least a third of its rows, attends through this whole batch's view
     * of the cache ({@link #span()}) instead of gathering its rows' histories: a gather copies every kept row's
     * keys and values in every block, which measured slower than attending over all of them.
     */
    public TokenBatch select(int[] rows) {
        int[] s = new int[rows.length];
        int[] p = new int[rows.length];
        for (int i = 0; i < rows.length; i++) {
            s[i] = slots[rows[i]];
            p[i] = positions[rows[i]];
        }
        // a subset of leading rows that starts at row 0 is itself a leading range, a view already
        boolean viaSpan = !prefill && leadingRange && 3L * rows.length >= slots.length && rows[rows.length - 1] >= rows.length;
        return new TokenBatch(model, manager, s, p, prefill, null, viaSpan ? this : null, viaSpan ? rows : null);
    }

    /** For a decode subset: the whole batch it was selected from, whose histories are one view; else null. */
    TokenBatch span() {
        return span;
    }

    /** The subset's rows within {@link #span()}. */
    NDIndex rowsOfSpan() {
        return rowsOfSpan;
    }

    private NDArray owned(NDArray a) {
        a.attach(manager);
        return a;
    }

    /**
     * Additive mask: 0 where a row may attend key position t (t <= its own position), -inf elsewhere; also
     * -inf at positions in {@code hiddenKeys} other than the row's own.
     */
    /**
     * What a masked key adds to its score. Not -inf: softmax gives the same zeros in the forward pass, but
     * PyTorch's backward through -inf scores turns gradients to NaN (the router trainer backpropagates through
     * the prefill; on stories-deep16 most steps were lost). Own keys are never masked, so no row is all masked.
     */
    private static final float MASKED = -1e9f;

    private NDArray buildMask(boolean[] hiddenKeys) {
        int n = slots.length;
        float[] m = new float[n * context];
        for (int i = 0; i < n; i++) {
            Arrays.fill(m, i * context + positions[i] + 1, (i + 1) * context, MASKED);
            if (hiddenKeys != null) {
                for (int t = 0; t <= positions[i] && t < hiddenKeys.length; t++) {
                    if (hiddenKeys[t] && t != positions[i]) {
                        m[i * context + t] = MASKED;
                    }
                }
            }
        }
        // decode: [N, 1, 1, T] against scores [N, kvH, g, T]; prefill: [N, 1, T] against [kvH, N, g, T]
        Shape shape = prefill ? new Shape(n, 1, context) : new Shape(n, 1, 1, context);
        return manager.create(m, shape);
    }

    public int size() {
        return slots.length;
    }

    public int[] slots() {
        return slots;
    }

    public int[] positions() {
        return positions;
    }

    public boolean isPrefill() {
        return prefill;
    }

    /** Keys/values needed: positions 0..context-1. */
    public int context() {
        return context;
    }

    NDIndex writeIndex() {
        return writeIndex;
    }

    NDIndex positionWriteIndex() {
        return positionWriteIndex;
    }

    /** The cache rows this batch attends to as a view, or null when its slots need a gather. */
    NDIndex historyView() {
        return historyView;
    }

    NDIndex historyWindow() {
        return historyWindow;
    }

    NDIndex slotGather() {
        return slotGather;
    }

    public NDManager manager() {
        return manager;
    }

    NDArray ropeCos() {
        return ropeCos;
    }

    NDArray ropeSin() {
        return ropeSin;
    }

    NDArray mask() {
        return mask;
    }
}
