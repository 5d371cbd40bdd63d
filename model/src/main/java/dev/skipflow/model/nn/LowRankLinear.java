package dev.skipflow.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/** {@code W = B A} as two thin matmuls, {@code (x A^T) B^T + b}: cheaper than the dense map while rank (in + out) < in out. */
public final class LowRankLinear implements Linear {

    private final NDArray aT; // [in, rank]
    private final NDArray bT; // [rank, out]
    private final NDArray bias;
    private final int in;
    private final int out;
    private final int rank;

    private LowRankLinear(NDArray aT, NDArray bT, NDArray bias, int in, int out, int rank) {
        this.aT = aT;
        this.bT = bT;
        this.bias = bias;
        this.in = in;
        this.out = out;
        this.rank = rank;
    }

    /** From host factors {@code A [rank, in]} and {@code B [out, rank]}, row-major. */
    public static LowRankLinear of(NDManager manager, float[] a, float[] b, int out, int in, int rank, float[] bias) {
        return new LowRankLinear(Tensors.transposed(manager, a, rank, in), Tensors.transposed(manager, b, out, rank),
                bias == null ? null : manager.create(bias), in, out, rank);
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
        NDArray y = x.matMul(aT).matMul(bT);
        return bias == null ? y : y.add(bias);
    }

    @Override
    public long flops(long rows) {
        return rows * (2L * rank * (in + out) + (bias != null ? out : 0));
    }
}
