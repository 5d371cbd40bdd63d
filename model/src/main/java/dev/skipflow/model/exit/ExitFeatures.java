package dev.skipflow.model.exit;

/**
 * Features of a probe (final norm and LM head applied to a token's hidden state after a block). AdaInfer's two:
 * {@code top prob} p1 and {@code gap} p1 - p2 of the softmax (over the candidates only, for a candidate probe),
 * with the probe's top-1 token. Both rise with depth and level off. Two more that cost almost nothing: the
 * top-1's {@code streak} (consecutive probes that agreed on it) and the block's {@code saturation} (cosine of its
 * input and output hidden states, CALM's state saturation).
 */
public record ExitFeatures(float topProb, float gap, int top1, int streak, float saturation) {

    public ExitFeatures(float topProb, float gap, int top1) {
        this(topProb, gap, top1, 1, Float.NaN);
    }

    public ExitFeatures withContext(int streak, float saturation) {
        return new ExitFeatures(topProb, gap, top1, streak, saturation);
    }

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
