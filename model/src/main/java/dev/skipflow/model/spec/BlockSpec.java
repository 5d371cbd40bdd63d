package dev.skipflow.model.spec;

/**
 * The shape of one decoder block: its own head counts and MLP width, so pruned or converted blocks can
 * differ from their neighbours (head size and model width are the model's, see {@link ModelSpec}).
 *
 * @param heads query heads
 * @param kvHeads key/value heads; {@code heads} is a multiple of it (grouped-query attention)
 * @param mlpHidden intermediate channels of the MLP (for a mixture of experts: the channels some expert uses)
 * @param mlp how the MLP is built
 * @param experts experts of a mixture-of-experts MLP, 0 for a gated dense one
 */
public record BlockSpec(int heads, int kvHeads, int mlpHidden, MlpKind mlp, int experts) {

    /** SwiGLU over all channels, or one expert's channel subset per token. */
    public enum MlpKind { GATED, MOE }

    public BlockSpec {
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0) {
            throw new IllegalArgumentException("a block needs heads a positive multiple of kv heads, got " + heads
                    + " heads and " + kvHeads + " kv heads");
        }
        if (mlpHidden <= 0) {
            throw new IllegalArgumentException("a block's MLP needs at least one channel, got " + mlpHidden);
        }
        if (mlp == null || (mlp == MlpKind.MOE) != (experts > 0)) {
            throw new IllegalArgumentException("a mixture-of-experts MLP needs experts > 0 and a gated one 0, got "
                    + mlp + " with " + experts);
        }
    }

    public static BlockSpec gated(int heads, int kvHeads, int mlpHidden) {
        return new BlockSpec(heads, kvHeads, mlpHidden, MlpKind.GATED, 0);
    }

    public int queryDim(int headSize) {
        return heads * headSize;
    }

    public int kvDim(int headSize) {
        return kvHeads * headSize;
    }
}
