package dev.skipflow.operators;

import java.io.Serializable;

/**
 * What one request may ask of the server, each with the job flag that raises it: record size
 * ({@code --max-payload-bytes}), {@code maxTokens} ({@code --max-completion-tokens}) and prompt length in tokens
 * ({@code --max-prompt-tokens}). The context ({@code --max-context}, at most the model's seq_len) bounds prompt and
 * completion together on top of these.
 */
public record PromptLimits(int maxPayloadBytes, int maxCompletionTokens, int maxPromptTokens) implements Serializable {

    public static final int DEFAULT_MAX_PAYLOAD_BYTES = 65536;
    public static final int DEFAULT_MAX_COMPLETION_TOKENS = 1024;
    public static final int DEFAULT_MAX_PROMPT_TOKENS = 4096;

    public PromptLimits {
        if (maxPayloadBytes < 1 || maxCompletionTokens < 1 || maxPromptTokens < 1) {
            throw new IllegalArgumentException("limits must be positive: " + maxPayloadBytes + ", " + maxCompletionTokens
                    + ", " + maxPromptTokens);
        }
    }

    public static PromptLimits defaults() {
        return new PromptLimits(DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_COMPLETION_TOKENS, DEFAULT_MAX_PROMPT_TOKENS);
    }

    public PromptLimits withMaxPayloadBytes(int bytes) {
        return new PromptLimits(bytes, maxCompletionTokens, maxPromptTokens);
    }
}
