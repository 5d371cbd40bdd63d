package dev.skipflow.operators;

import dev.skipflow.model.sampling.SamplingParams;
import java.io.Serializable;

/**
 * A validated request: DESIGN §4's fields with defaults applied, the prompt already tokenized, and when
 * the job read it (the start of {@code latencyMs}).
 */
public record PromptRequest(
        String id,
        String prompt,
        int[] promptTokens,
        int maxTokens,
        float temperature,
        float topP,
        Long seed,
        boolean adaptive,
        long receivedAtMillis) implements Serializable {

    public SamplingParams samplingParams() {
        return new SamplingParams(maxTokens, temperature, topP, seed);
    }
}
