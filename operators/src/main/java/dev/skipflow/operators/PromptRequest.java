package dev.skipflow.operators;

import dev.skipflow.model.sampling.SamplingParams;
import java.io.Serializable;

/**
 * A validated request: DESIGN §4's fields with defaults applied, the prompt already tokenized, when the job
 * read it (the start of {@code latencyMs}) and where (so a request that fails later is dead-lettered with the
 * record's topic, partition and offset).
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
        long receivedAtMillis,
        String topic,
        int partition,
        long offset) implements Serializable {

    /** A request read from nowhere in particular (tests, tools): topic "", partition and offset -1. */
    public PromptRequest(String id, String prompt, int[] promptTokens, int maxTokens, float temperature, float topP,
            Long seed, boolean adaptive, long receivedAtMillis) {
        this(id, prompt, promptTokens, maxTokens, temperature, topP, seed, adaptive, receivedAtMillis, "", -1, -1L);
    }

    public SamplingParams samplingParams() {
        return new SamplingParams(maxTokens, temperature, topP, seed);
    }
}
