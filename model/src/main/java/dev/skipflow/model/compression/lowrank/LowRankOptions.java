package dev.skipflow.model.compression.lowrank;

import java.util.Locale;

/**
 * What {@code lowrank} does. SoftLMs publishes no code; the training details below are this implementation's
 * choices (docs/PERFORMANCE.md, "Low rank (issue 14)").
 *
 * @param paramsRatio share of the linear maps' parameters kept, in (0, 1]
 * @param samples calibration samples the thresholds are distilled on
 * @param sampleLength tokens per sample
 * @param steps optimizer steps (learned only)
 * @param docsPerStep samples per step
 * @param budgetWeight weight of {@code (soft parameters / budget - 1)^2} beside the KL term
 * @param learningRate Adam's rate for the thresholds (in units of each layer's largest singular value)
 * @param temperature of the soft rank {@code sum sigmoid((s_i / s_0 - t) / temperature)}
 * @param tuneFactors whether U and V are trained along with the thresholds
 * @param factorLearningRate Adam's rate for U and V
 * @param gate train with the soft gate {@code s sigmoid((s / s_0 - t) / temperature)} instead of SoftLMs'
 *     {@code relu(s - t s_0)}
 * @param shrink keep the soft-thresholded values {@code s_i - tau} (as trained) rather than {@code s_i}
 */
public record LowRankOptions(double paramsRatio, Method method, int samples, int sampleLength, int steps,
        int docsPerStep, double budgetWeight, float learningRate, float temperature, boolean tuneFactors,
        float factorLearningRate, boolean gate, boolean shrink, long seed) {

    /** How ranks are chosen. */
    public enum Method {
        /** SoftLMs: a learned soft threshold per layer, distilled from the dense model under a budget. */
        LEARNED,
        /** One rank per kind of map (q, k, v, o, gate, up, down) keeping the same share of each: truncated SVD. */
        UNIFORM;

        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }

        public static Method parse(String s) {
            for (Method m : values()) {
                if (m.label().equals(s)) {
                    return m;
                }
            }
            throw new IllegalArgumentException("--method must be learned or uniform, got " + s);
        }
    }

    public LowRankOptions {
        requireRatio(paramsRatio);
        if (samples < 1 || sampleLength < 2) {
            throw new IllegalArgumentException("--samples must be >= 1 and --sample-length >= 2, got " + samples + " and "
                    + sampleLength);
        }
        if (steps < 0 || docsPerStep < 1) {
            throw new IllegalArgumentException("--steps must be >= 0 and --docs-per-step >= 1, got " + steps + " and "
                    + docsPerStep);
        }
        if (!(budgetWeight >= 0) || !(learningRate > 0) || !(temperature > 0) || !(factorLearningRate > 0)) {
            throw new IllegalArgumentException("--budget-weight must be >= 0 and --lr, --temperature, --factor-lr > 0; got "
                    + budgetWeight + ", " + learningRate + ", " + temperature + ", " + factorLearningRate);
        }
    }

    public static void requireRatio(double ratio) {
        if (!(ratio > 0 && ratio <= 1)) {
            throw new IllegalArgumentException("--params-ratio is the share of the linear layers' parameters kept and "
                    + "must be in (0, 1], got " + ratio);
        }
    }
}
