package dev.skipflow.model.exit;

import dev.skipflow.model.decoder.ExitPolicy;
import java.util.Arrays;

/**
 * AdaInfer's stop/continue decision: a linear SVM over {@code [top prob, gap, streak >= 2, streak >= 3,
 * saturation, one-hot of the block]} (the block indicator gives each block its own bias, since the share of
 * settled tokens differs a lot by depth); AdaInfer's own classifier has zero weight on streak and saturation.
 * A token stops after a probed block when the SVM's decision value exceeds {@code threshold}. Probes run after
 * blocks {@code minLayer, minLayer + every, ...} below the last one (after the last block the LM head runs anyway).
 * Immutable.
 *
 * @param layers blocks of the model it was trained for
 * @param weights {@code 5 + (layers - 1)} weights: top prob, gap, streak of 2, streak of 3, saturation, then one per
 *     probe-able block (the older layout without streak and saturation, {@code 2 + (layers - 1)}, is read too)
 * @param bias the SVM's bias
 * @param threshold decision value above which a token exits (0 is the SVM's own boundary)
 * @param minLayer first block after which to probe (0-based)
 * @param every probe every k blocks from there
 * @param propagateKv how an exited token fills the blocks it skips: true = its keys/values there are projected from
 *     its exit hidden state (CALM), false = it writes none and later tokens do not attend to it there (as a routed skip)
 * @param candidates 0 = every probe runs the whole LM head; K = a token's later probes score only its first probe's K
 *     best tokens ({@link ExitPolicy#candidates()})
 */
public record ExitClassifier(int layers, float[] weights, float bias, double threshold, int minLayer, int every,
        boolean propagateKv, int candidates) implements ExitPolicy, java.io.Serializable {

    /** Index of the first block indicator in {@link #weights}. */
    static final int BLOCKS = 5;

    public ExitClassifier(int layers, float[] weights, float bias, double threshold, int minLayer, int every) {
        this(layers, weights, bias, threshold, minLayer, every, true, 0);
    }

    public ExitClassifier {
        if (layers < 2) {
            throw new IllegalArgumentException("early exit needs a model of at least 2 blocks, got " + layers);
        }
        if (weights.length == 2 + layers - 1) { // the layout before streak and saturation
            float[] w = new float[featureCount(layers)];
            w[0] = weights[0];
            w[1] = weights[1];
            System.arraycopy(weights, 2, w, BLOCKS, layers - 1);
            weights = w;
        }
        if (candidates < 0) {
            throw new IllegalArgumentException("candidates must be >= 0, got " + candidates);
        }
        if (weights.length != featureCount(layers)) {
            throw new IllegalArgumentException("exit classifier has " + weights.length + " weights; a " + layers
                    + "-block model needs " + featureCount(layers));
        }
        if (minLayer < 0 || minLayer >= layers - 1 || every < 1) {
            throw new IllegalArgumentException("probe policy: the first probed block must be in 0.." + (layers - 2)
                    + " and every >= 1 (got " + minLayer + ", " + every + ")");
        }
        if (Double.isNaN(threshold)) {
            throw new IllegalArgumentException("exit threshold is NaN");
        }
        weights = weights.clone();
    }

    /** Features per probe: top prob, gap, two streaks, saturation, one indicator per probe-able block (all but the last). */
    public static int featureCount(int layers) {
        return BLOCKS + layers - 1;
    }

    /** Whether a probe runs after block {@code layer} (0-based). */
    @Override
    public boolean probes(int layer) {
        return layer >= minLayer && layer < layers - 1 && (layer - minLayer) % every == 0;
    }

    /** The SVM's decision value for a probe after block {@code layer}; larger means the top-1 is more likely final. */
    public double score(ExitFeatures f, int layer) {
        return score(weights, bias, f, layer);
    }

    /** The linear decision value of {@code f} after block {@code layer} under weights {@code w} (see {@link #weights}). */
    static double score(float[] w, float bias, ExitFeatures f, int layer) {
        double s = bias + w[0] * f.topProb() + w[1] * f.gap() + w[BLOCKS + layer];
        if (f.streak() >= 2) {
            s += w[2];
        }
        if (f.streak() >= 3) {
            s += w[3];
        }
        return Float.isNaN(f.saturation()) ? s : s + w[4] * f.saturation();
    }

    public boolean accepts(ExitFeatures f, int layer) {
        return score(f, layer) > threshold;
    }

    @Override
    public boolean accepts(Probe p, int layer) {
        return accepts(ExitFeatures.of(p.logits(), p.offset(), p.count()).withContext(p.streak(), p.saturation()), layer);
    }

    @Override
    public boolean wantsSaturation() {
        return weights[4] != 0;
    }

    /** The features from the probe's scores and the linear decision over them. */
    @Override
    public long decisionFlops(int scored) {
        return ExitFeatures.flops(scored) + 2L * (BLOCKS + layers); // weights and bias
    }

    public ExitClassifier withThreshold(double t) {
        return new ExitClassifier(layers, weights, bias, t, minLayer, every, propagateKv, candidates);
    }

    public ExitClassifier withPolicy(int first, int k) {
        return new ExitClassifier(layers, weights, bias, threshold, first, k, propagateKv, candidates);
    }

    public ExitClassifier withPropagation(boolean propagate) {
        return new ExitClassifier(layers, weights, bias, threshold, minLayer, every, propagate, candidates);
    }

    public ExitClassifier withCandidates(int k) {
        return new ExitClassifier(layers, weights, bias, threshold, minLayer, every, propagateKv, k);
    }

    public ExitClassifier withWeights(float[] w, float b) {
        return new ExitClassifier(layers, w, b, threshold, minLayer, every, propagateKv, candidates);
    }

    /** How many probes a token that never exits pays. */
    public int probeCount() {
        int n = 0;
        for (int l = 0; l < layers; l++) {
            n += probes(l) ? 1 : 0;
        }
        return n;
    }

    public String describe() {
        return String.format("threshold %.3g, probes after %s%s%s", threshold, probedBlocks(),
                candidates > 0 ? ", later probes over " + candidates + " candidates" : "", propagateKv ? "" : ", k/v masked");
    }

    private String probedBlocks() {
        StringBuilder b = new StringBuilder();
        for (int l = 0; l < layers; l++) {
            if (probes(l)) {
                b.append(b.length() == 0 ? "" : ",").append(l);
            }
        }
        return b.length() == 0 ? "none" : b.toString();
    }

    /** A classifier that accepts every probe (tests: the output is the probe at {@code layer}). */
    public static ExitClassifier always(int layers, int layer) {
        return new ExitClassifier(layers, new float[featureCount(layers)], 0f, Double.NEGATIVE_INFINITY, layer, layers);
    }

    /** A classifier that never accepts, probing after every block but the last (tests: dense output, probes paid). */
    public static ExitClassifier never(int layers) {
        return new ExitClassifier(layers, new float[featureCount(layers)], 0f, Double.POSITIVE_INFINITY, 0, 1);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ExitClassifier c && c.layers == layers && Arrays.equals(c.weights, weights)
                && c.bias == bias && c.threshold == threshold && c.minLayer == minLayer && c.every == every
                && c.propagateKv == propagateKv && c.candidates == candidates;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(weights) * 31 + Double.hashCode(threshold) + 7 * minLayer + 13 * every;
    }
}
