package dev.skipflow.model.decoder;

/**
 * Early exit as the forward pass sees it: after which blocks a token's output is probed (final norm and LM
 * head), and whether the probe's logits let it stop there.
 */
public interface ExitPolicy {

    /** Blocks of the model it was made for. */
    int layers();

    /** Whether a probe runs after block {@code layer} (0-based). */
    boolean probes(int layer);

    /** Whether a token whose probe after block {@code layer} gave {@code logits[offset, offset + vocab)} stops. */
    boolean accepts(float[] logits, int offset, int vocab, int layer);

    /** FLOPs of one decision beyond the probe's LM head (features and classifier). */
    long decisionFlops(int vocab);

    /**
     * How an exited token fills the blocks it skips: true = its keys/values there are projected from its exit
     * hidden state (CALM), false = it writes none and later tokens do not attend to it there.
     */
    boolean propagateKv();
}
