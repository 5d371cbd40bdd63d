package dev.skipflow.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import java.util.List;

/**
 * A mixture of SwiGLU experts with a top-1 token router (ToMoE's converted form): each token runs only its
 * expert's channels. Expert weights are sliced once when the model is built, not gathered per call, and the
 * router's choice is a plain argmax, so outputs are deterministic.
 */
public final class MoeMlp implements Mlp {

    private final Linear router;
    private final List<GatedMlp> experts;
    private final int hidden;
    private final int dim;

    public MoeMlp(Linear router, List<GatedMlp> experts, int hidden) {
        if (router.out() != experts.size()) {
            throw new IllegalArgumentException("router scores " + router.out() + " experts, there are " + experts.size());
        }
        this.router = router;
        this.experts = List.copyOf(experts);
        this.hidden = hidden;
        this.dim = router.in();
    }

    @Override
    public NDArray forward(NDArray xn, long[] flops) {
        int n = (int) xn.getShape().get(0);
        long[] choice = router.forward(xn).argMax(-1).toLongArray();
        NDArray out = xn.getManager().zeros(new ai.djl.ndarray.types.Shape(n, dim), xn.getDataType());
        for (int e = 0; e < experts.size(); e++) {
            int[] rows = rowsOf(choice, e);
            if (rows.length == 0) {
                continue;
            }
            GatedMlp expert = experts.get(e);
            NDIndex at = new NDIndex("{}", xn.getManager().create(Tensors.toLongs(rows)));
            out.set(at, expert.forward(rows.length == n ? xn : xn.get(at), null));
            if (flops != null) {
                for (int r : rows) {
                    flops[r] += router.flops(1) + expert.flopsPerToken();
                }
            }
        }
        return out;
    }

    private static int[] rowsOf(long[] choice, int expert) {
        int k = 0;
        int[] rows = new int[choice.length];
        for (int i = 0; i < choice.length; i++) {
            if (choice[i] == expert) {
                rows[k++] = i;
            }
        }
        return java.util.Arrays.copyOf(rows, k);
    }

    @Override
    public int hidden() {
        return hidden;
    }

    /** The router and the mean expert's SwiGLU: what a token costs on average, for analytic estimates. */
    @Override
    public long meanFlopsPerToken() {
        return router.flops(1) + Math.round(experts.stream().mapToLong(GatedMlp::flopsPerToken).average().orElse(0));
    }
}
