package dev.skipflow.model.weights;

import ai.djl.ndarray.NDManager;
import dev.skipflow.model.nn.DenseLinear;
import dev.skipflow.model.nn.Linear;
import dev.skipflow.model.nn.LoraLinear;
import dev.skipflow.model.nn.LowRankLinear;
import dev.skipflow.model.nn.SoftThresholdLinear;

/**
 * Host-side fp32 weights of one linear map {@code y = W x + b}, row-major {@code [out, in]} like llama2.c:
 * a dense matrix, two low-rank factors {@code W = B A}, a dense matrix plus a LoRA update
 * {@code W + scale B A}, or (while SoftLMs trains) an SVD with a soft threshold. The decoder folds RMSNorm weights and the attention scale into them
 * ({@link #scaleInputs}, {@link #scaleOutputs}) before building the device {@link Linear}.
 */
public sealed interface LinearWeights {

    int in();

    int out();

    /** {@code [out]}, or null for none. */
    float[] bias();

    /** W diag(s): column j times {@code s[j]} (an RMSNorm weight folded into the matmul after it). */
    LinearWeights scaleInputs(float[] s);

    /** s W, bias included (the attention scale folded into the query rows). */
    LinearWeights scaleOutputs(float s);

    /** Weights stored (biases included). */
    long parameters();

    /** The full matrix {@code [out, in]} (a reconstruction for factored kinds). */
    float[] toDense();

    /** The device form. */
    Linear build(NDManager manager);

    /** A plain matrix. */
    record Dense(int out, int in, float[] weight, float[] bias) implements LinearWeights {
        public Dense {
            check("weight", weight, (long) out * in);
            if (bias != null) {
                check("bias", bias, out);
            }
        }

        public Dense(int out, int in, float[] weight) {
            this(out, in, weight, null);
        }

        @Override
        public Dense scaleInputs(float[] s) {
            return new Dense(out, in, scaleColumns(weight, in, s), bias);
        }

        @Override
        public Dense scaleOutputs(float s) {
            return new Dense(out, in, scaled(weight, s), bias == null ? null : scaled(bias, s));
        }

        @Override
        public long parameters() {
            return (long) out * in + (bias == null ? 0 : out);
        }

        @Override
        public float[] toDense() {
            return weight;
        }

        @Override
        public DenseLinear build(NDManager manager) {
            return DenseLinear.of(manager, weight, out, in, bias);
        }
    }

    /** {@code W = B A} with {@code A [rank, in]} and {@code B [out, rank]}: two thin matmuls instead of one. */
    record LowRank(int out, int in, int rank, float[] a, float[] b, float[] bias) implements LinearWeights {
        public LowRank {
            if (rank <= 0) {
                throw new IllegalArgumentException("a low-rank linear needs rank >= 1, got " + rank);
            }
            check("a", a, (long) rank * in);
            check("b", b, (long) out * rank);
            if (bias != null) {
                check("bias", bias, out);
            }
        }

        @Override
        public LowRank scaleInputs(float[] s) {
            return new LowRank(out, in, rank, scaleColumns(a, in, s), b, bias);
        }

        @Override
        public LowRank scaleOutputs(float s) {
            return new LowRank(out, in, rank, a, scaled(b, s), bias == null ? null : scaled(bias, s));
        }

        @Override
        public long parameters() {
            return (long) rank * (in + out) + (bias == null ? 0 : out);
        }

        @Override
        public float[] toDense() {
            return matmul(b, a, out, rank, in);
        }

        @Override
        public Linear build(NDManager manager) {
            return LowRankLinear.of(manager, a, b, out, in, rank, bias);
        }
    }

    /** A dense matrix and a LoRA update {@code scale * B A} ({@code A [rank, in]}, {@code B [out, rank]}). */
    record Lora(Dense base, int rank, float[] a, float[] b, float scale) implements LinearWeights {
        public Lora {
            check("lora a", a, (long) rank * base.in());
            check("lora b", b, (long) base.out() * rank);
        }

        @Override
        public int in() {
            return base.in();
        }

        @Override
        public int out() {
            return base.out();
        }

        @Override
        public float[] bias() {
            return base.bias();
        }

        @Override
        public Lora scaleInputs(float[] s) {
            return new Lora(base.scaleInputs(s), rank, scaleColumns(a, in(), s), b, scale);
        }

        @Override
        public Lora scaleOutputs(float s) {
            return new Lora(base.scaleOutputs(s), rank, a, scaled(b, s), scale);
        }

        @Override
        public long parameters() {
            return base.parameters() + (long) rank * (in() + out());
        }

        /** The merged matrix {@code W + scale B A}: what serving uses once training is done. */
        public Dense merged() {
            float[] update = matmul(b, a, out(), rank, in());
            float[] w = base.weight().clone();
            for (int i = 0; i < w.length; i++) {
                w[i] += scale * update[i];
            }
            return new Dense(out(), in(), w, base.bias());
        }

        @Override
        public float[] toDense() {
            return merged().weight();
        }

        @Override
        public Linear build(NDManager manager) {
            return LoraLinear.of(manager, base.weight(), a, b, scale, out(), in(), rank, base.bias());
        }
    }

    /**
     * A matrix in SVD form, {@code W = U diag(relu(s - t s[0])) V^T}, with {@code U [out, k]}, {@code s [k]} decreasing,
     * {@code V^T [k, in]} and a soft threshold {@code t} in units of the largest singular value: what SoftLMs trains
     * (the threshold, and optionally the factors) before the layer is truncated to {@link LowRank} or {@link Dense}.
     * Training only: a checkpoint stores the truncated form.
     */
    record Svd(int out, int in, int k, float[] u, float[] s, float[] vt, float[] bias, float threshold)
            implements LinearWeights {
        public Svd {
            check("u", u, (long) out * k);
            check("s", s, k);
            check("vt", vt, (long) k * in);
            if (bias != null) {
                check("bias", bias, out);
            }
        }

        @Override
        public Svd scaleInputs(float[] scale) {
            return new Svd(out, in, k, u, s, scaleColumns(vt, in, scale), bias, threshold);
        }

        @Override
        public Svd scaleOutputs(float scale) {
            return new Svd(out, in, k, scaled(u, scale), s, vt, bias == null ? null : scaled(bias, scale), threshold);
        }

        @Override
        public long parameters() {
            return (long) k * (in + out) + k + (bias == null ? 0 : out);
        }

        /** The singular values after the threshold, {@code max(s_i - t s_0, 0)}. */
        public float[] thresholded() {
            float tau = threshold * (k == 0 ? 0 : s[0]);
            float[] out = new float[k];
            for (int i = 0; i < k; i++) {
                out[i] = Math.max(s[i] - tau, 0f);
            }
            return out;
        }

        @Override
        public float[] toDense() {
            float[] sv = thresholded();
            float[] us = new float[u.length];
            for (int i = 0; i < out; i++) {
                for (int j = 0; j < k; j++) {
                    us[i * k + j] = u[i * k + j] * sv[j];
                }
            }
            return matmul(us, vt, out, k, in);
        }

        @Override
        public Linear build(NDManager manager) {
            return SoftThresholdLinear.of(manager, u, s, vt, out, in, k, bias, threshold);
        }
    }

    private static void check(String what, float[] a, long expected) {
        if (a == null || a.length != expected) {
            throw new IllegalArgumentException("linear " + what + " has " + (a == null ? "no" : a.length)
                    + " values, expected " + expected);
        }
    }

    private static float[] scaled(float[] m, float s) {
        float[] out = m.clone();
        for (int i = 0; i < out.length; i++) {
            out[i] *= s;
        }
        return out;
    }

    private static float[] scaleColumns(float[] m, int cols, float[] s) {
        if (s.length != cols) {
            throw new IllegalArgumentException("input scale has " + s.length + " values for " + cols + " columns");
        }
        float[] out = m.clone();
        for (int i = 0; i < out.length; i++) {
            out[i] *= s[i % cols];
        }
        return out;
    }

    /** Row-major {@code [m, k] x [k, n]} on the host. */
    private static float[] matmul(float[] x, float[] y, int m, int k, int n) {
        float[] out = new float[Math.multiplyExact(m, n)];
        for (int i = 0; i < m; i++) {
            for (int p = 0; p < k; p++) {
                float v = x[i * k + p];
                if (v == 0f) {
                    continue;
                }
                int yo = p * n;
                int oo = i * n;
                for (int j = 0; j < n; j++) {
                    out[oo + j] += v * y[yo + j];
                }
            }
        }
        return out;
    }
}
