package dev.skipflow.model.compression.prune;

import java.util.Arrays;
import java.util.Locale;

/**
 * How the scores of a coupled group's matrices become the group's score (LLM-Pruner's "aggregation"): an attention
 * group's q, k, v and o; an MLP channel's gate, up and down. "last" takes the last matrix of the group in data
 * flow only: o for attention, down for the MLP.
 */
public enum Aggregation {
    SUM, MEAN, MAX, PROD, LAST;

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    public double combine(double[] members) {
        return switch (this) {
            case SUM -> Arrays.stream(members).sum();
            case MEAN -> Arrays.stream(members).average().orElse(0);
            case MAX -> Arrays.stream(members).max().orElse(0);
            case PROD -> Arrays.stream(members).reduce(1, (a, b) -> a * b);
            case LAST -> members[members.length - 1];
        };
    }

    public static Aggregation parse(String s) {
        try {
            return valueOf(s.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--aggregation must be one of "
                    + Arrays.stream(values()).map(Aggregation::label).toList() + ", got " + s);
        }
    }
}
