package dev.skipflow.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;

/** SwiGLU, {@code down(silu(gate x) * up x)}, with gate|up as one map so one matmul computes both. */
public final class GatedMlp implements Mlp {

    private final Linear gateUp;
    private final Linear down;
    private final int hidden;
    private final NDIndex gateColumns;
    private final NDIndex upColumns;
    private final long flopsPerToken;

    public GatedMlp(Linear gateUp, Linear down) {
        if (gateUp.out() % 2 != 0 || down.in() * 2 != gateUp.out()) {
            throw new IllegalArgumentException("gate|up gives " + gateUp.out() + " channels, down takes " + down.in());
        }
        this.gateUp = gateUp;
        this.down = down;
        this.hidden = down.in();
        this.gateColumns = Tensors.columns(0, hidden);
        this.upColumns = Tensors.columns(hidden, 2L * hidden);
        this.flopsPerToken = gateUp.flops(1) + 4L * hidden + down.flops(1); // silu and the product: ~4 per channel
    }

    @Override
    public NDArray forward(NDArray xn, long[] flops) {
        NDArray gu = gateUp.forward(xn);
        NDArray y = Tensors.silu(gu.get(gateColumns)).mul(gu.get(upColumns));
        if (flops != null) {
            for (int i = 0; i < flops.length; i++) {
                flops[i] += flopsPerToken;
            }
        }
        return down.forward(y);
    }

    /** gate|up as one map ({@code [dim] -> [gate | up]}), the MLP's norm weight folded in. */
    public Linear gateUp() {
        return gateUp;
    }

    public Linear down() {
        return down;
    }

    @Override
    public int hidden() {
        return hidden;
    }

    public long flopsPerToken() {
        return flopsPerToken;
    }

    @Override
    public long meanFlopsPerToken() {
        return flopsPerToken;
    }
}
