package dev.skipflow.model.flops;

import static dev.skipflow.model.nn.Linear.denseFlops;

import dev.skipflow.model.spec.BlockSpec;
import dev.skipflow.model.spec.ModelSpec;
import java.util.ArrayList;
import java.util.List;

/**
 * Analytic floating-point operations of one token's work, a multiply-add counted as 2, for the model as it
 * runs (from its layers' own counts) next to the dense original it was derived from (the reference savings
 * are measured against). Attention is counted over the keys a token really attends, so cost grows with
 * position as it does at run time.
 */
public final class FlopCounter {

    /**
     * One block's costs per token.
     *
     * @param fixed norms, q/k/v, RoPE, output projection and residuals
     * @param perKey attention per attended key: q.k, softmax, p.v over all heads
     * @param mlp the MLP (for a mixture of experts: its router and the mean expert; what ran is measured)
     * @param kvProjection keys and values computed from a hidden state without running the block (an exited
     *     token's, CALM-style): norm, k|v projection, RoPE on k
     */
    public record BlockCost(long fixed, long perKey, long mlp, long kvProjection) {
        public long attending(int keys) {
            return fixed + mlp + perKey * keys;
        }
    }

    private final List<BlockCost> blocks;
    private final List<BlockCost> reference;
    private final long head;
    private final long referenceHead;
    private final int vocabSize;
    private final int dim;
    private final long[] throughFixed; // blocks 0..l: fixed + mlp, summed
    private final long[] throughPerKey; // blocks 0..l: per-key cost, summed
    private final long denseFixedTotal; // the original's blocks: fixed + mlp, summed
    private final long densePerKeyTotal;

    /**
     * @param blocks this model's block costs, from its layers
     * @param head this model's final norm and LM head
     * @param original the dense model savings count against (a compressed model's original)
     */
    public FlopCounter(List<BlockCost> blocks, long head, ModelSpec original) {
        this.blocks = List.copyOf(blocks);
        this.reference = dense(original);
        this.head = head;
        this.referenceHead = denseHead(original);
        this.vocabSize = original.vocabSize();
        this.dim = original.dim(); // compression never cuts the hidden size
        if (this.reference.size() != this.blocks.size()) {
            throw new IllegalArgumentException("model has " + blocks.size() + " blocks, its original " + reference.size());
        }
        throughFixed = new long[blocks.size()];
        throughPerKey = new long[blocks.size()];
        for (int l = 0; l < blocks.size(); l++) {
            BlockCost c = blocks.get(l);
            throughFixed[l] = (l == 0 ? 0 : throughFixed[l - 1]) + c.fixed() + c.mlp();
            throughPerKey[l] = (l == 0 ? 0 : throughPerKey[l - 1]) + c.perKey();
        }
        denseFixedTotal = reference.stream().mapToLong(c -> c.fixed() + c.mlp()).sum();
        densePerKeyTotal = reference.stream().mapToLong(BlockCost::perKey).sum();
    }

    /** A dense model's own counter (tests, analyses without a built model). */
    public static FlopCounter of(ModelSpec spec) {
        return new FlopCounter(dense(spec), denseHead(spec), spec);
    }

    /** Costs of the dense blocks of {@code spec}: what every kind of compressed block is compared with. */
    public static List<BlockCost> dense(ModelSpec spec) {
        List<BlockCost> out = new ArrayList<>();
        long d = spec.dim();
        int hd = spec.headSize();
        for (BlockSpec b : spec.blocks()) {
            long q = b.queryDim(hd);
            long kv = b.kvDim(hd);
            long h = b.mlpHidden();
            long qkv = denseFlops(d, q + 2 * kv, spec.qkvBias(), 1);
            long wo = denseFlops(q, d, false, 1);
            long mlp = denseFlops(d, 2 * h, false, 1) + 4 * h
                    + denseFlops(h, d, false, 1);
            long kvProj = rmsNorm(d) + denseFlops(d, 2 * kv, spec.qkvBias(), 1) + rope(kv);
            out.add(new BlockCost(attentionFixed(d, q, kv, qkv, wo), perKey(b.heads(), hd), mlp, kvProj));
        }
        return out;
    }

    /** Final norm and a dense LM head. */
    public static long denseHead(ModelSpec spec) {
        return rmsNorm(spec.dim()) + denseFlops(spec.dim(), spec.vocabSize(), false, 1);
    }

    /** The non-attention, non-MLP part of a block whose q|k|v and output maps cost {@code qkv} and {@code wo}. */
    public static long attentionFixed(long dim, long queryDim, long kvDim, long qkv, long wo) {
        return 2 * rmsNorm(dim) + qkv + rope(queryDim + kvDim) + wo + 2 * dim; // two norms, two residual adds
    }

    /** Per attended key over {@code heads} heads: q.k (2 hd), softmax (~5), p.v (2 hd). */
    public static long perKey(int heads, int headSize) {
        return 4L * heads * headSize + 5L * heads;
    }

    /** square, sum, scale, weight. */
    public static long rmsNorm(long dim) {
        return 4 * dim;
    }

    /** Per rotated pair: 4 multiplies, 2 adds. */
    public static long rope(long channels) {
        return 3 * channels;
    }

    public int layers() {
        return blocks.size();
    }

    public BlockCost cost(int layer) {
        return blocks.get(layer);
    }

    /** The dense original's block {@code layer} for a token at {@code position} (it attends position + 1 keys). */
    public long denseBlock(int layer, int position) {
        return reference.get(layer).attending(position + 1);
    }

    /** This model's block {@code layer} for a token that attends {@code keys} keys (fewer when others skipped it). */
    public long blockAttending(int layer, int keys) {
        return blocks.get(layer).attending(keys);
    }

    /** Keys and values of one token in one block computed from a hidden state, without running the block. */
    public long kvProjection(int layer) {
        return blocks.get(layer).kvProjection();
    }

    /** The final norm and the LM head's rows for {@code k} candidate tokens only (early exit's cheap probe). */
    public long candidateHead(int k) {
        return rmsNorm(dim) + 2L * k * dim;
    }

    /** A block's saturation for one token: the cosine of its input and output (three dot products). */
    public long saturation() {
        return 6L * dim;
    }

    /** This model's final norm and LM head for one token. */
    public long head() {
        return head;
    }

    /** The dense original's final norm and LM head. */
    public long denseHead() {
        return referenceHead;
    }

    /** A token through every block of the dense original, at {@code position} (no head). */
    public long denseAllBlocks(int position) {
        return denseFixedTotal + densePerKeyTotal * (position + 1L);
    }

    /** A token through every block of this model, at {@code position}, attending every earlier key (no head). */
    public long allBlocks(int position) {
        return blocksThrough(blocks.size() - 1, position);
    }

    /** Blocks 0..{@code last} of this model for a token at {@code position} attending every earlier key. */
    public long blocksThrough(int last, int position) {
        return last < 0 ? 0 : throughFixed[last] + throughPerKey[last] * (position + 1L);
    }

    /** Key/value projections of an exited token in every block after {@code layer}. */
    public long kvProjectionsAfter(int layer) {
        long f = 0;
        for (int l = layer + 1; l < blocks.size(); l++) {
            f += blocks.get(l).kvProjection();
        }
        return f;
    }

    public int vocabSize() {
        return vocabSize;
    }
}
