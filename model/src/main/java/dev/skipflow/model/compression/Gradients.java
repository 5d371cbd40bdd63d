package dev.skipflow.model.compression;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.optimizer.Optimizer;
import java.util.List;

/** Optimizer steps for the compression trainers. */
public final class Gradients {

    private Gradients() {}

    /**
     * One step of {@code optimizer} after clipping the gradients' global norm to {@code maxNorm} (summed in double, so
     * large finite gradients do not overflow it); the gradients are consumed and zeroed. A step whose gradient is not
     * finite (a rare overflow in the backward pass) is dropped; returns whether the step was taken.
     */
    public static boolean clippedStep(Optimizer optimizer, String prefix, List<NDArray> params, double maxNorm) {
        NDArray[] grads = new NDArray[params.size()];
        double norm = 0;
        for (int i = 0; i < grads.length; i++) {
            grads[i] = params.get(i).getGradient();
            try (NDArray d = grads[i].toType(DataType.FLOAT64, true); NDArray sq = d.square(); NDArray sum = sq.sum()) {
                norm += sum.getDouble();
            }
        }
        norm = Math.sqrt(norm);
        boolean finite = Double.isFinite(norm);
        float scale = norm > maxNorm ? (float) (maxNorm / norm) : 1f;
        for (int i = 0; i < grads.length; i++) {
            if (finite) {
                try (NDArray g = grads[i].mul(scale)) {
                    optimizer.update(prefix + "." + i, params.get(i), g);
                }
            }
            zero(grads[i]);
            grads[i].close();
        }
        return finite;
    }

    /** Zeroes a gradient in place, non-finite entries included (0 x inf would leave NaN behind for every later step). */
    public static void zero(NDArray grad) {
        grad.muli(0f);
        try (NDArray bad = grad.isNaN(); NDArray any = bad.any()) {
            if (any.getBoolean()) {
                grad.set(bad, 0f);
            }
        }
    }

    /** Whether every entry is finite. */
    public static boolean finite(NDArray a) {
        try (NDArray d = a.toType(DataType.FLOAT64, true); NDArray s = d.sum()) {
            return Double.isFinite(s.getDouble());
        }
    }
}
