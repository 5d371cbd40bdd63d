package dev.skipflow.model.sampling;

/** Picks a sequence's next token from its logits. One per sequence (it may keep RNG state); not thread-safe. */
public interface Sampler {

    /** Next token from one row of logits; the array may be used as scratch. */
    int sample(float[] logits);

    /**
     * Whether {@link #sample} is always the argmax, so a runner may compute it on the device and copy one id
     * instead of the whole row.
     */
    boolean argmaxOnly();

    /** The request's settings this sampler follows. */
    SamplingParams params();

    /** llama2.c's sampler for these settings (greedy at temperature 0). */
    static Sampler of(SamplingParams params) {
        return new Llama2cSampler(params);
    }

    /** First index of the largest value, like run.c's strict '>' scan. */
    static int argmax(float[] v) {
        return argmax(v, 0, v.length);
    }

    /** The same over {@code v[offset, offset + length)}, as an index into that range. */
    static int argmax(float[] v, int offset, int length) {
        int best = 0;
        for (int i = 1; i < length; i++) {
            if (v[offset + i] > v[offset + best]) {
                best = i;
            }
        }
        return best;
    }
}
