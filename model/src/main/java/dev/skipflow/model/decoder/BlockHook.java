package dev.skipflow.model.decoder;

import ai.djl.ndarray.NDArray;

/**
 * What trainers and analyses attach to the forward pass: they read each block's input, output and attention,
 * may hide some rows' keys from the others in a block (a soft, differentiable stand-in for routing), and may
 * replace the hidden state carried to the next block (e.g. mix input and output by a gate). A hook sees every
 * row, so it is not combined with a {@link BlockRouter}.
 */
public interface BlockHook {

    /** Before block {@code layer} runs on {@code x}. */
    default void before(int layer, NDArray x) {}

    /** Positions whose keys other rows must not attend in block {@code layer} (their own stays), or null. */
    default boolean[] hiddenKeys(int layer) {
        return null;
    }

    /**
     * An MLP to run instead of block {@code layer}'s own (on the block's normalized MLP input, the norm's weight
     * folded into the maps as in the model), e.g. a trainer's masked, differentiable one; null = the block's own.
     */
    default dev.skipflow.model.nn.Mlp mlp(int layer) {
        return null;
    }

    /** The hidden state to carry on after block {@code layer}; by default its output. */
    default NDArray after(int layer, NDArray input, NDArray output, AttentionStats attention) {
        return output;
    }
}
