package dev.skipflow.model.decoder;

import ai.djl.ndarray.NDArray;
import dev.skipflow.model.nn.Linear;
import dev.skipflow.model.nn.Mlp;
import dev.skipflow.model.nn.Tensors;
import java.util.function.Consumer;

/** One decoder block: {@code h = x + attention(rmsnorm(x)); out = h + mlp(rmsnorm(h))}. */
public final class Block {

    private final Attention attention;
    private final Mlp mlp;
    private final float eps;

    Block(Attention attention, Mlp mlp, float eps) {
        this.attention = attention;
        this.mlp = mlp;
        this.eps = eps;
    }

    /**
     * The block over the batch's rows; writes their keys and values to the cache.
     *
     * @param mlpFlops per row, incremented by what its MLP cost; null when not counted
     * @param observer receives the attention the rows paid; null for none
     */
    public NDArray forward(NDArray x, TokenBatch batch, KvCache cache, long[] mlpFlops, Consumer<AttentionStats> observer) {
        return forward(x, batch, cache, mlpFlops, null, observer, null);
    }

    /**
     * The block over the batch's rows, as above; {@code experts} receives per row the expert its MLP took (a mixture
     * of experts; null = not wanted), and {@code replacement}, when not null, runs instead of the block's own MLP
     * (a trainer's differentiable stand-in; its rows are not counted).
     */
    public NDArray forward(NDArray x, TokenBatch batch, KvCache cache, long[] mlpFlops, int[] experts,
            Consumer<AttentionStats> observer, Mlp replacement) {
        NDArray h = x.add(attention.forward(Tensors.rmsNorm(x, eps), batch, cache, observer));
        NDArray hn = Tensors.rmsNorm(h, eps);
        return h.add(replacement != null ? replacement.forward(hn, null) : mlp.forward(hn, mlpFlops, experts));
    }

    /** The block with nothing counted or observed. */
    public NDArray forward(NDArray x, TokenBatch batch, KvCache cache) {
        return forward(x, batch, cache, null, null);
    }

    /**
     * Keys and values of this block for the batch's rows from hidden states {@code x}, written to the cache without
     * running the block: an early-exited token's entries for the blocks it skipped (CALM's state propagation).
     */
    public void writeKeysValues(NDArray x, TokenBatch batch, KvCache cache) {
        attention.writeKeysValues(Tensors.rmsNorm(x, eps), batch, cache);
    }

    Attention attention() {
        return attention;
    }

    /** q|k|v of the block's attention ({@code [dim] -> [q | k | v]}), its norm and the attention scale folded in. */
    public Linear qkv() {
        return attention.qkv();
    }

    /** The attention's output map {@code [q] -> [dim]}. */
    public Linear wo() {
        return attention.wo();
    }

    public Mlp mlp() {
        return mlp;
    }
}
