package dev.skipflow.model.sampling;

import java.security.SecureRandom;
import java.util.Arrays;

/**
 * Picks the next token from logits the way llama2.c's {@code sample} does: softmax(logits / T) and a
 * multinomial or top-p draw with llama2.c's xorshift RNG, so a seeded run is reproducible (and matches run.c
 * for the same seed); argmax at temperature 0. One sampler per sequence; not thread-safe.
 */
public final class Llama2cSampler implements Sampler {

    private final SamplingParams params;
    private long state;

    public Llama2cSampler(SamplingParams params) {
        this.params = params;
        long seed = params.seed() != null ? params.seed() : new SecureRandom().nextLong();
        this.state = seed == 0 ? 0x9E3779B97F4A7C15L : seed; // xorshift is stuck at 0
    }

    @Override
    public SamplingParams params() {
        return params;
    }

    @Override
    public boolean argmaxOnly() {
        return params.isGreedy();
    }

    /** Next token from one row of logits; the array is used as scratch. */
    @Override
    public int sample(float[] logits) {
        if (params.isGreedy()) {
            return Sampler.argmax(logits);
        }
        for (int i = 0; i < logits.length; i++) {
            logits[i] /= params.temperature();
        }
        softmax(logits);
        float coin = randomF32();
        if (params.topP() >= 1f) {
            return sampleMult(logits, coin);
        }
        return sampleTopP(logits, params.topP(), coin);
    }

    static void softmax(float[] x) {
        float max = x[0];
        for (float v : x) {
            max = Math.max(max, v);
        }
        float sum = 0f;
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.exp(x[i] - max);
            sum += x[i];
        }
        for (int i = 0; i < x.length; i++) {
            x[i] /= sum;
        }
    }

    private static int sampleMult(float[] probs, float coin) {
        float cdf = 0f;
        for (int i = 0; i < probs.length; i++) {
            cdf += probs[i];
            if (coin < cdf) {
                return i;
            }
        }
        return probs.length - 1; // rounding
    }

    private static int sampleTopP(float[] probs, float topP, float coin) {
        // Tokens below this cannot be in the nucleus; dropping them first keeps the sort small.
        float cutoff = (1f - topP) / (probs.length - 1);
        int n = 0;
        long[] packed = new long[probs.length];
        for (int i = 0; i < probs.length; i++) {
            if (probs[i] >= cutoff) {
                // sort key: probability bits (positive floats order like ints), then index
                packed[n++] = ((long) Float.floatToIntBits(probs[i]) << 32) | (0xffffffffL & ~i);
            }
        }
        long[] sorted = Arrays.copyOf(packed, n);
        Arrays.sort(sorted); // ascending; walk from the end for descending probability
        float cumulative = 0f;
        int last = 0;
        for (int j = 0; j < n; j++) {
            cumulative += Float.intBitsToFloat((int) (sorted[n - 1 - j] >>> 32));
            last = j;
            if (cumulative > topP) {
                break;
            }
        }
        float r = coin * cumulative;
        float cdf = 0f;
        for (int j = 0; j <= last; j++) {
            long e = sorted[n - 1 - j];
            cdf += Float.intBitsToFloat((int) (e >>> 32));
            if (r < cdf) {
                return ~(int) e;
            }
        }
        return ~(int) sorted[n - 1 - last];
    }

    private int randomU32() {
        state ^= state >>> 12;
        state ^= state << 25;
        state ^= state >>> 27;
        return (int) ((state * 0x2545F4914F6CDD1DL) >>> 32);
    }

    private float randomF32() {
        return (randomU32() >>> 8) / 16777216.0f;
    }
}
