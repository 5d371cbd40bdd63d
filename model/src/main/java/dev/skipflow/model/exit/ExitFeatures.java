package dev.skipflow.model.exit;

/**
 * AdaInfer's two features of a probe (final norm and LM head applied to a token's hidden state after a block):
 * {@code top prob} p1 and {@code gap} p1 - p2 of the softmax, with the probe's top-1 token. Both rise with depth
 * and level off; a classifier decides from them whether the token may stop.
 */
public record ExitFeatures(float topProb, float gap, int top1) {

    /** Features of the logits row {@code [offset, offset + v)}; one pass for max and runner-up, one for the sum. */
    public static ExitFeatures of(float[] logits, int offset, int v) {
        float best = Float.NEGATIVE_INFINITY;
        float second = Float.NEGATIVE_INFINITY;
        int top = 0;
        for (int i = 0; i < v; i++) {
            float x = logits[offset + i];
            if (x > best) {
                second = best;
                best = x;
                top = i;
            } else if (x > second) {
                second = x;
            }
        }
        double sum = 0;
        for (int i = 0; i < v; i++) {
            sum += Math.exp(logits[offset + i] - best);
        }
        float p1 = (float) (1.0 / sum);
        float p2 = (float) (Math.exp(second - best) / sum);
        return new ExitFeatures(p1, p1 - p2, top);
    }

    /** FLOPs of computing them from logits: max/compare, exp, sum and two divides, about 4 per logit. */
    public static long flops(int vocab) {
        return 4L * vocab;
    }
}
