package dev.skipflow.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

/**
 * A frozen dense map plus a trainable LoRA update, {@code x W^T + scale (x A^T) B^T + b}. Served only while
 * training or comparing; a finished model merges the update into W and runs as a {@link DenseLinear}.
 */
public final class LoraLinear implements Linear {

    private final DenseLinear base;
    private final NDArray aT; // [in, rank]
    private final NDArray bT; // [rank, out], scale folded in
    private final int rank;
    private float dropout;

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

    /** {@code A^T [in, rank]} on the device: trained, with {@link #adapterB()}; the base stays frozen. */
    public NDArray adapterA() {
        return aT;
    }

    /** {@code (scale B)^T [rank, out]} on the device (the scale folded in). */
    public NDArray adapterB() {
        return bT;
    }

    public int rank() {
        return rank;
    }

    /**
     * For training only: drop each input of the update with probability {@code p} (the rest scaled by 1 / (1 - p)),
     * as LoRA's dropout does; 0 (the default) for none. The frozen map always sees the whole input.
     */
    public void trainingDropout(float p) {
        if (!(p >= 0 && p < 1)) {
            throw new IllegalArgumentException("LoRA dropout must be in [0, 1), got " + p);
        }
        this.dropout = p;
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
        NDArray u = x;
        if (dropout > 0) {
            NDArray keep = x.getManager().randomUniform(0f, 1f, x.getShape()).gte(dropout).toType(DataType.FLOAT32, false);
            u = x.mul(keep).div(1 - dropout);
        }
        return base.forward(x).add(u.matMul(aT).matMul(bT));
    }

    @Override
    public long flops(long rows) {
        return base.flops(rows) + rows * (2L * rank * (in() + out()) + out());
    }
}
