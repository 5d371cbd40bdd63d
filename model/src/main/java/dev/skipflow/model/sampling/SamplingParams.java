package dev.skipflow.model.sampling;

/**
 * How to pick tokens for one request.
 *
 * @param maxTokens most tokens to generate (at least 1)
 * @param temperature 0 for greedy; otherwise logits are divided by it before softmax
 * @param topP nucleus sampling mass in (0, 1]; 1 samples from the whole distribution
 * @param seed RNG seed; null picks one at random
 */
public record SamplingParams(int maxTokens, float temperature, float topP, Long seed) {

    public static final int DEFAULT_MAX_TOKENS = 64;

    public SamplingParams {
        if (maxTokens < 1) {
            throw new IllegalArgumentException("maxTokens must be at least 1, got " + maxTokens);
        }
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("topP must be in (0, 1], got " + topP);
        }
    }

    public static SamplingParams greedy(int maxTokens) {
        return new SamplingParams(maxTokens, 0f, 1f, null);
    }

    public boolean isGreedy() {
        return temperature == 0f;
    }
}
