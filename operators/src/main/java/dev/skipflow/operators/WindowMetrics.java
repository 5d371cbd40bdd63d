package dev.skipflow.operators;

import java.io.Serializable;

/** One processing-time window of completions, as written to the metrics topic (DESIGN §4). */
public record WindowMetrics(
        long windowStart,
        long windowEnd,
        long requests,
        long completionTokens,
        double tokensPerSecond,
        double latencyP50Ms,
        double latencyP99Ms,
        double savedFraction,
        dev.skipflow.model.flops.Savings.ByMethod byMethod) implements Serializable {}
