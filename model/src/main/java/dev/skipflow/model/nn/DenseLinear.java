package dev.skipflow.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/** {@code x W^T + b}, with W stored transposed and contiguous ({@code [in, out]}) so the matmul reads no strides. */
public final class DenseLinear implements Linear {

    private final NDArray weightT;
    private final NDArray bias;
    private final int in;
    private final int out;

    DenseLinear(NDArray weightT, NDArray bias) {
        this.weightT = weightT;
        this.bias = bias;
        this.in = (int) weightT.getShape().get(0);
        this.out = (int) weightT.getShape().get(1);
    }

    /** From a row-major host matrix {@code [out, in]} and an optional bias {@code [out]}. */
    public static DenseLinear of(NDManager manager, float[] rowMajor, int out, int in, float[] bias) {
        return new DenseLinear(Tensors.transposed(manager, rowMajor, out, in), bias == null ? null : manager.create(bias));
    }

    /**
     * The device matrix, transposed ({@code [in, out]}): what trainers take gradients on (a row of it is an input
     * column of W, a column of it an output row).
     */
    public NDArray weightT() {
        return weightT;
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
        NDArray y = x.matMul(weightT);
        return bias == null ? y : y.add(bias);
    }

    /**
     * Row r's outputs at {@code ids[r, 0..K)} only: {@code x [N, in]}, {@code ids [N, K]} (int64) to {@code [N, K]}.
     * The rows of W it needs are gathered per call; for a handful of outputs that is cheaper than the whole map.
     */
    public NDArray forwardSelected(NDArray x, NDArray ids) {
        long n = ids.getShape().get(0);
        long k = ids.getShape().get(1);
        NDArray flat = ids.reshape(n * k);
        NDArray rows = weightT.transpose(1, 0).get(new ai.djl.ndarray.index.NDIndex("{}", flat)).reshape(n, k, in);
        NDArray y = rows.matMul(x.reshape(n, in, 1)).reshape(n, k);
        return bias == null ? y : y.add(bias.get(new ai.djl.ndarray.index.NDIndex("{}", flat)).reshape(n, k));
    }

    @Override
    public long flops(long rows) {
        return Linear.denseFlops(in, out, bias != null, rows);
    }
}
