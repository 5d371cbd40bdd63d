package dev.skipflow.model.weights;

/**
 * Structural edits of host weights: stacking maps that share an input, and keeping a subset of a map's output
 * rows or input columns (pruned heads and channels, one expert's channels).
 */
public final class Slicing {

    private Slicing() {}

    /**
     * The rows of several maps of the same input stacked into one ({@code [out1 + out2 + ..., in]}), so one
     * matmul computes them all; null unless every part is dense and all or none carry biases.
     */
    public static LinearWeights.Dense stackDense(LinearWeights... parts) {
        int in = parts[0].in();
        int out = 0;
        boolean biased = parts[0].bias() != null;
        for (LinearWeights p : parts) {
            if (!(p instanceof LinearWeights.Dense) || p.in() != in || (p.bias() != null) != biased) {
                return null;
            }
            out += p.out();
        }
        float[] w = new float[Math.multiplyExact(out, in)];
        float[] b = biased ? new float[out] : null;
        int rows = 0;
        for (LinearWeights p : parts) {
            LinearWeights.Dense d = (LinearWeights.Dense) p;
            System.arraycopy(d.weight(), 0, w, rows * in, d.weight().length);
            if (biased) {
                System.arraycopy(d.bias(), 0, b, rows, d.out());
            }
            rows += d.out();
        }
        return new LinearWeights.Dense(out, in, w, b);
    }

    /** Output rows {@code keep} (increasing) of a map; a LoRA update is merged first. */
    public static LinearWeights rows(LinearWeights w, int[] keep) {
        if (w instanceof LinearWeights.Lora l) {
            return rows(l.merged(), keep);
        }
        if (w instanceof LinearWeights.Svd v) {
            return rows(new LinearWeights.Dense(v.out(), v.in(), v.toDense(), v.bias()), keep);
        }
        float[] bias = w.bias() == null ? null : takeRows(w.bias(), 1, keep);
        if (w instanceof LinearWeights.LowRank r) {
            return new LinearWeights.LowRank(keep.length, r.in(), r.rank(), r.a(), takeRows(r.b(), r.rank(), keep), bias);
        }
        LinearWeights.Dense d = (LinearWeights.Dense) w;
        return new LinearWeights.Dense(keep.length, d.in(), takeRows(d.weight(), d.in(), keep), bias);
    }

    /** Input columns {@code keep} (increasing) of a map; a LoRA update is merged first. */
    public static LinearWeights columns(LinearWeights w, int[] keep) {
        if (w instanceof LinearWeights.Lora l) {
            return columns(l.merged(), keep);
        }
        if (w instanceof LinearWeights.Svd v) {
            return columns(new LinearWeights.Dense(v.out(), v.in(), v.toDense(), v.bias()), keep);
        }
        if (w instanceof LinearWeights.LowRank r) {
            return new LinearWeights.LowRank(r.out(), keep.length, r.rank(), takeColumns(r.a(), r.in(), keep), r.b(),
                    r.bias());
        }
        LinearWeights.Dense d = (LinearWeights.Dense) w;
        return new LinearWeights.Dense(d.out(), keep.length, takeColumns(d.weight(), d.in(), keep), d.bias());
    }

    static float[] takeRows(float[] m, int cols, int[] rows) {
        float[] out = new float[rows.length * cols];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(m, rows[i] * cols, out, i * cols, cols);
        }
        return out;
    }

    static float[] takeColumns(float[] m, int cols, int[] keep) {
        int rows = m.length / cols;
        float[] out = new float[rows * keep.length];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < keep.length; j++) {
                out[r * keep.length + j] = m[r * cols + keep[j]];
            }
        }
        return out;
    }
}
