package dev.skipflow.model.report;

/** Prefill wall-clock, dense vs routed in alternating rounds, on a (synthetic) model where compute dominates. */
public record SpeedPoint(String model, String router, int promptTokens, double savedFraction, double denseTokensPerSecond,
        double routedTokensPerSecond, double speedup) {}
