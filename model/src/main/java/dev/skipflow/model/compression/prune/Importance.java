package dev.skipflow.model.compression.prune;

import java.util.Arrays;
import java.util.Locale;

/**
 * How a weight's contribution is scored (LLM-Pruner, section 3.2, and its baselines). The Taylor kinds use the
 * gradient {@code g} of the next-token loss on calibration samples; for a group they are summed over the group's
 * weights in each matrix, then the matrices' scores are combined by an {@link Aggregation}.
 */
public enum Importance {
    /** First-order element-wise: {@code sum |W * g|} (the paper's default, Element^1). */
    ELEMENT1("element1", true),
    /** Second-order element-wise with the Fisher diagonal: {@code sum W * mean(g_n^2) * W} over samples n (Element^2). */
    ELEMENT2("element2", true),
    /** Vector-wise: per channel {@code |sum W * g|} (the sign kept inside a channel), summed over the group. */
    VECTOR("vector", true),
    /** Magnitude baseline: {@code sum |W|}. */
    L1("l1", false),
    /** Magnitude baseline: {@code sum W^2}. */
    L2("l2", false),
    /** Baseline: a seeded uniform draw per group. */
    RANDOM("random", false),
    /**
     * The exact loss change the Taylor kinds estimate: the mean calibration loss with the group alone removed,
     * less the loss with it (one forward pass per group and sample: for small models, or to judge the estimates).
     */
    ABLATION("ablation", false);

    private final String label;
    private final boolean gradients;

    Importance(String label, boolean gradients) {
        this.label = label;
        this.gradients = gradients;
    }

    public String label() {
        return label;
    }

    /** Whether it needs gradients on calibration samples. */
    public boolean usesGradients() {
        return gradients;
    }

    /** Whether it is measured on calibration samples (gradients or ablations). */
    public boolean usesCalibration() {
        return gradients || this == ABLATION;
    }

    public static Importance parse(String s) {
        for (Importance i : values()) {
            if (i.label.equals(s.toLowerCase(Locale.ROOT))) {
                return i;
            }
        }
        throw new IllegalArgumentException("--importance must be one of "
                + Arrays.stream(values()).map(Importance::label).toList() + ", got " + s);
    }
}
