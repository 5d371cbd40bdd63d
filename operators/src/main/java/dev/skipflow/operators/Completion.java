package dev.skipflow.operators;

import dev.skipflow.model.flops.Savings;
import java.io.Serializable;

/** The answer to one request, as written to the completions topic (DESIGN §4). */
public record Completion(
        String id,
        String text,
        String finishReason,
        int promptTokens,
        int completionTokens,
        long latencyMs,
        long timeToFirstTokenMs,
        Savings savings) implements Serializable {}
