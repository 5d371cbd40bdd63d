package dev.skipflow.model.decoder;

/**
 * Early exit as the forward pass sees it: after which blocks a token is probed, what a probe computes, and
 * whether what it measured lets the token stop there.
 *
 * <p>A probe is the final norm and LM head on the token's hidden state. With {@link #candidates()} K > 0 only
 * a token's first probe runs the whole head; its later probes score only the K tokens that first probe ranked
 * highest (2·K·dim multiply-adds instead of 2·vocab·dim), and a token that stops at such a probe then gets the
 * whole head once for its output, which is the head every token pays at the end anyway.
 */
public interface ExitPolicy {

    /** Blocks of the model it was made for. */
    int layers();

    /** Whether a probe runs after block {@code layer} (0-based). */
    boolean probes(int layer);

    /** 0 = every probe runs the whole LM head; K > 0 = later probes score the first probe's K best tokens only. */
    default int candidates() {
        return 0;
    }

    /** Whether decisions use the block's saturation (cosine of its input and output hidden states). */
    default boolean wantsSaturation() {
        return false;
    }

    /**
     * What one probe of one token measured.
     *
     * @param logits the probe's scores at {@code [offset, offset + count)}: the whole vocabulary, or the candidates
     * @param streak consecutive probes of this token, this one included, whose top-1 token was the same (1 = new)
     * @param saturation cosine of the probed block's input and output hidden state (1 = the block changed nothing;
     *     NaN when the policy does not want it)
     */
    record Probe(float[] logits, int offset, int count, int streak, float saturation) {}

    /** Whether a token whose probe after block {@code layer} measured {@code probe} stops there. */
    boolean accepts(Probe probe, int layer);

    /** FLOPs of one decision beyond the probe's head (features and classifier), over {@code scored} logits. */
    long decisionFlops(int scored);

    /**
     * How an exited token fills the blocks it skips: true = its keys/values there are projected from its exit
     * hidden state (CALM), false = it writes none and later tokens do not attend to it there.
     */
    boolean propagateKv();
}
