package dev.skipflow.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * A frozen dense map plus a trainable LoRA update, {@code x W^T + scale (x A^T) B^T + b}. Served only while
 * training or comparing; a finished model merges the update into W and runs as a {@link DenseLinear}.
 */
public final class LoraLinear implements Linear {

    private final DenseLinear base;
    private final NDArray aT; // [in, rank]
    private final NDArray bT; // [rank, out], scale folded in
    private final int rank;

    private LoraLinear(DenseLinear base, NDArray aT, NDArray bT, int rank) {
        this.base = base;
        this.aT = aT;
        this.bT = bT;
        this.rank = rank;
    }

    public static LoraLinear of(NDManager manager, float[] weight, float[] a, float[] b, float scale, int out, int in,
            int rank, float[] bias) {
        float[] scaledB = b.clone();
        for (int i = 0; i < scaledB.length; i++) {
            scaledB[i] *= scale;
        }
        return new LoraLinear(DenseLinear.of(manager, weight, out, in, bias), Tensors.transposed(manager, a, rank, in),
                Tensors.transposed(manager, scaledB, out, rank), rank);
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
    public NDArray forward(NDArray x) {
        return base.forward(x).add(x.matMul(aT).matMul(bT));
    }

    @Override
    public long flops(long rows) {
        return base.flops(rows) + rows * (2L * rank * (in() + out()) + out());
    }
}
