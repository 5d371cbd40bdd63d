package dev.skipflow.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;

/**
 * SoftLMs' trainable layer: {@code W = U diag(relu(s - t s_0)) V^T} applied as {@code ((x V) * relu(s - t s_0)) U^T + b},
 * with a learnable threshold {@code t} (in units of the largest singular value {@code s_0}) and, optionally, trainable
 * factors. The threshold's gradient flows through the relu: raising it shrinks every kept singular value and drops
 * those it passes. {@link #softRank} is the differentiable count of singular values above the threshold that the
 * budget term penalizes.
 */
public final class SoftThresholdLinear implements Linear {

    private final NDArray v; // [in, k]
    private final NDArray uT; // [k, out]
    private final NDArray sigma; // [k]
    private final NDArray normalized; // [k], s / s_0
    private final NDArray threshold; // [1]
    private final NDArray bias;
    private final float sigmaMax;
    private final int in;
    private final int out;
    private final int k;
    private float gateTemperature; // 0: SoftLMs' relu(s - t s_0); > 0: s sigmoid((s / s_0 - t) / T)

    private SoftThresholdLinear(NDArray v, NDArray uT, NDArray sigma, NDArray threshold, NDArray bias, float sigmaMax,
            int in, int out, int k) {
        this.v = v;
        this.uT = uT;
        this.sigma = sigma;
        this.normalized = sigma.div(sigmaMax == 0f ? 1f : sigmaMax);
        this.threshold = threshold;
        this.bias = bias;
        this.sigmaMax = sigmaMax;
        this.in = in;
        this.out = out;
        this.k = k;
    }

    /** From host factors {@code U [out, k]}, {@code s [k]} (decreasing), {@code V^T [k, in]}, row-major. */
    public static SoftThresholdLinear of(NDManager manager, float[] u, float[] s, float[] vt, int out, int in, int k,
            float[] bias, float threshold) {
        return new SoftThresholdLinear(Tensors.transposed(manager, vt, k, in), Tensors.transposed(manager, u, out, k),
                manager.create(s), manager.create(new float[] {threshold}, new Shape(1)),
                bias == null ? null : manager.create(bias), k == 0 ? 0f : s[0], in, out, k);
    }

    /** The threshold {@code t} ({@code [1]}, in units of the largest singular value): the trained parameter. */
    public NDArray threshold() {
        return threshold;
    }

    /** {@code V} with whatever was folded into its rows ({@code [in, k]}). */
    public NDArray v() {
        return v;
    }

    /** {@code U^T} with whatever was folded into it ({@code [k, out]}). */
    public NDArray uT() {
        return uT;
    }

    public int k() {
        return k;
    }

    /**
     * Switches the operator: 0 (the default) is SoftLMs' soft threshold {@code relu(s - t s_0)}, which shrinks every kept
     * value by the threshold; {@code T > 0} a soft gate {@code s sigmoid((s / s_0 - t) / T)}, which keeps values well
     * above the threshold as they are and fades those near it (a differentiable hard threshold).
     */
    public void gate(float temperature) {
        this.gateTemperature = temperature;
    }

    /** {@code sum_i sigmoid((s_i / s_0 - t) / temperature)}: a differentiable rank. */
    public NDArray softRank(float temperature) {
        return Activation.sigmoid(normalized.sub(threshold).div(temperature)).sum();
    }

    @Override
    public int in() {
        return in;
    }

    @Override
    public int out() {
        return out;
    }

    @Override
    public NDArray forward(NDArray x) {
        NDArray kept = gateTemperature > 0
                ? sigma.mul(Activation.sigmoid(normalized.sub(threshold).div(gateTemperature)))
                : Activation.relu(sigma.sub(threshold.mul(sigmaMax)));
        NDArray y = x.matMul(v).mul(kept).matMul(uT);
        return bias == null ? y : y.add(bias);
    }

    @Override
    public long flops(long rows) {
        return rows * (2L * k * (in + out) + k + (bias != null ? out : 0));
    }
}
