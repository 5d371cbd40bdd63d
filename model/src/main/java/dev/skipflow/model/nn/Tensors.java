package dev.skipflow.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

/** Small helpers shared by the layers. */
public final class Tensors {

    private Tensors() {}

    /** Row-major host {@code [rows, cols]} to a contiguous device {@code [cols, rows]}. */
    public static NDArray transposed(NDManager manager, float[] rowMajor, int rows, int cols) {
        try (NDArray a = manager.create(rowMajor, new Shape(rows, cols))) {
            return a.transpose().duplicate(); // contiguous copy, so matmul reads it without strides
        }
    }

    /** Columns {@code [from, to)} of a 2-d array. */
    public static NDIndex columns(long from, long to) {
        return new NDIndex().addAllDim().addSliceDim(from, to);
    }

    /** x / sqrt(mean(x^2) + eps), per row; the norm's weight is folded into the matmul that follows. */
    public static NDArray rmsNorm(NDArray x, float eps) {
        NDArray ms = x.square().mean(new int[] {-1}, true);
        return x.div(ms.add(eps).sqrt());
    }

    /** silu(g) = g * sigmoid(g); DJL's Activation.swish is an order of magnitude slower here. */
    public static NDArray silu(NDArray g) {
        return g.mul(ai.djl.nn.Activation.sigmoid(g));
    }

    public static long[] toLongs(int[] a) {
        long[] out = new long[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i];
        }
        return out;
    }
}
