package dev.skipflow.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import java.util.List;

/**
 * Several maps of the same input with their outputs side by side, {@code [rows, out1 + out2 + ...]}: q|k|v or
 * gate|up when the parts cannot share one dense matrix (a low-rank q beside a dense k, say).
 */
public final class StackedLinear implements Linear {

    private final List<Linear> parts;
    private final int out;

    public StackedLinear(List<Linear> parts) {
        this.parts = List.copyOf(parts);
        int o = 0;
        for (Linear p : parts) {
            if (p.in() != parts.get(0).in()) {
                throw new IllegalArgumentException("stacked maps must share their input width");
            }
            o += p.out();
        }
        this.out = o;
    }

    /** The maps side by side, in output order. */
    public List<Linear> parts() {
        return parts;
    }

    @Override
    public int in() {
        return parts.get(0).in();
    }

    @Override
    public int out() {
        return out;
    }

    @Override
    public NDArray forward(NDArray x) {
        NDList outs = new NDList();
        for (Linear p : parts) {
            outs.add(p.forward(x));
        }
        return NDArrays.concat(outs, -1);
    }

    @Override
    public long flops(long rows) {
        long f = 0;
        for (Linear p : parts) {
            f += p.flops(rows);
        }
        return f;
    }
}
