package dev.skipflow.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.index.NDIndex;
import java.util.List;

/**
 * A mixture of SwiGLU experts with a top-1 token router (ToMoE's converted form): each token runs only its
 * expert's channels. Expert weights are sliced once when the model is built, not gathered per call, and the
 * router's choice is a plain argmax, so outputs are deterministic.
 *
 * <p>One call: the router's scores and argmax, one gather that orders the rows by expert, one SwiGLU per expert
 * that got rows (over a contiguous slice of the ordered rows: one gate|up matmul, one down matmul), one
 * concatenation and one gather back to row order. A call whose rows all took one expert runs that expert alone.
 */
public final class MoeMlp implements Mlp {

    private final Linear router;
    private final List<GatedMlp> experts;
    private final int hidden;
    private final long routerFlops;

    public MoeMlp(Linear router, List<GatedMlp> experts, int hidden) {
        if (router.out() != experts.size()) {
            throw new IllegalArgumentException("router scores " + router.out() + " experts, there are " + experts.size());
        }
        if (experts.size() < 2) {
            throw new IllegalArgumentException("a mixture of experts needs at least 2 experts, got " + experts.size());
        }
        this.router = router;
        this.experts = List.copyOf(experts);
        this.hidden = hidden;
        this.routerFlops = router.flops(1) + router.out(); // the scores and their argmax
    }

    @Override
    public NDArray forward(NDArray xn, long[] flops) {
        return forward(xn, flops, null);
    }

    @Override
    public NDArray forward(NDArray xn, long[] flops, int[] chosen) {
        int n = (int) xn.getShape().get(0);
        int[] choice = route(xn);
        int count = experts.size();
        int[] sizes = new int[count];
        for (int c : choice) {
            sizes[c]++;
        }
        if (flops != null) {
            for (int i = 0; i < n; i++) {
                flops[i] += routerFlops + experts.get(choice[i]).flopsPerToken();
            }
        }
        if (chosen != null) {
            System.arraycopy(choice, 0, chosen, 0, n);
        }
        for (int e = 0; e < count; e++) {
            if (sizes[e] == n) {
                return experts.get(e).forward(xn, null);
            }
        }
        // order the rows by expert (stable), run each expert on its slice, then put the rows back
        int[] start = new int[count + 1];
        for (int e = 0; e < count; e++) {
            start[e + 1] = start[e] + sizes[e];
        }
        int[] fill = start.clone();
        long[] order = new long[n];
        long[] inverse = new long[n];
        for (int i = 0; i < n; i++) {
            int at = fill[choice[i]]++;
            order[at] = i;
            inverse[i] = at;
        }
        var m = xn.getManager();
        NDArray sorted = xn.get(new NDIndex("{}", m.create(order)));
        NDList parts = new NDList();
        for (int e = 0; e < count; e++) {
            if (sizes[e] > 0) {
                NDArray rows = sorted.get(new NDIndex().addSliceDim(start[e], start[e + 1]));
                parts.add(experts.get(e).forward(rows, null));
            }
        }
        NDArray out = parts.size() == 1 ? parts.get(0) : NDArrays.concat(parts, 0);
        return out.get(new NDIndex("{}", m.create(inverse)));
    }

    /** Per row, the expert with the highest router score (ties: the lowest index). */
    public int[] route(NDArray xn) {
        long[] best = router.forward(xn).argMax(-1).toLongArray();
        int[] choice = new int[best.length];
        for (int i = 0; i < best.length; i++) {
            choice[i] = (int) best[i];
        }
        return choice;
    }

    public Linear router() {
        return router;
    }

    public List<GatedMlp> expertMlps() {
        return experts;
    }

    @Override
    public int experts() {
        return experts.size();
    }

    @Override
    public int hidden() {
        return hidden;
    }

    /** The router (scores and argmax) and the mean expert's SwiGLU: what a token costs on average, for estimates. */
    @Override
    public long meanFlopsPerToken() {
        return routerFlops + Math.round(experts.stream().mapToLong(GatedMlp::flopsPerToken).average().orElse(0));
    }
}
