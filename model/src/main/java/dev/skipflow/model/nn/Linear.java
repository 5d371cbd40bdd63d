package dev.skipflow.model.nn;

import ai.djl.ndarray.NDArray;

/**
 * A linear map on the device, {@code x [rows, in] -> [rows, out]}: dense, low-rank or dense with a LoRA
 * update. Each kind counts its own FLOPs, so the decoder's account follows whatever the weights are.
 */
public interface Linear {

    int in();

    int out();

    NDArray forward(NDArray x);

    /** Floating-point operations for {@code rows} inputs, a multiply-add counted as 2 (biases included). */
    long flops(long rows);

    /** FLOPs of a dense {@code [out, in]} map over {@code rows} inputs: the reference every kind is compared to. */
    static long denseFlops(long in, long out, boolean bias, long rows) {
        return rows * (2 * in * out + (bias ? out : 0));
    }
}
