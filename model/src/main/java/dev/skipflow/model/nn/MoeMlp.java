package dev.skipflow.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * A mixture of SwiGLU experts with a top-1 token router (ToMoE's converted form): each token runs only its
 * expert's channels. Expert weights are sliced once when the model is built, not gathered per call, and the
 * router's choice is a plain argmax, so outputs are deterministic.
 *
 * <p>One call: the router's scores and argmax, one gather that orders the rows by expert, one SwiGLU per expert
 * that got rows (over a contiguous slice of the ordered rows: one gate|up matmul, one down matmul), one
 * concatenation and one gather back to row order. A call whose rows all took one expert runs that expert alone.
 *
 * <p>Channels every expert uses (their intersection) form a shared SwiGLU run once over all rows, and each expert
 * keeps only its own remainder: a SwiGLU is a sum over its channels, so the result is the same, while a batch that
 * touches many experts streams the shared weights once instead of once per expert (decode at batch 64 with 8
 * experts is bound by reading weights, not by multiply-adds).
 */
public final class MoeMlp implements Mlp {

    private final Linear router;
    private final GatedMlp shared;
    private final List<GatedMlp> experts;
    private final long[] expertFlops;
    private final int hidden;
    private final long routerFlops;

    /** Experts without a shared part: {@code experts.get(e)} is expert e's whole SwiGLU. */
    public MoeMlp(Linear router, List<GatedMlp> experts, int hidden) {
        this(router, null, experts, hidden);
    }

    /**
     * @param shared the channels every expert uses, run for every row (null for none)
     * @param experts per expert, the SwiGLU over its channels beyond {@code shared} (null where there are none)
     */
    public MoeMlp(Linear router, GatedMlp shared, List<GatedMlp> experts, int hidden) {
        if (router.out() != experts.size()) {
            throw new IllegalArgumentException("router scores " + router.out() + " experts, there are " + experts.size());
        }
        if (experts.size() < 2) {
            throw new IllegalArgumentException("a mixture of experts needs at least 2 experts, got " + experts.size());
        }
        if (shared == null && experts.contains(null)) {
            throw new IllegalArgumentException("an expert without channels of its own needs a shared part");
        }
        this.router = router;
        this.shared = shared;
        this.experts = Collections.unmodifiableList(new ArrayList<>(experts));
        this.expertFlops = new long[experts.size()];
        for (int e = 0; e < expertFlops.length; e++) {
            GatedMlp own = experts.get(e);
            long ownFlops = own == null ? 0 : own.flopsPerToken();
            // with both parts, their outputs are summed: dim additions
            expertFlops[e] = shared == null ? ownFlops : shared.flopsPerToken() + ownFlops
                    + (own == null ? 0 : shared.down().out());
        }
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
                flops[i] += routerFlops + expertFlops[choice[i]];
            }
        }
        if (chosen != null) {
            System.arraycopy(choice, 0, chosen, 0, n);
        }
        NDArray common = shared == null ? null : shared.forward(xn, null);
        for (int e = 0; e < count; e++) {
            if (sizes[e] == n) {
                GatedMlp own = experts.get(e);
                NDArray mine = own == null ? null : own.forward(xn, null);
                return common == null ? mine : mine == null ? common : common.add(mine);
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
                GatedMlp own = experts.get(e);
                parts.add(own == null
                        ? m.zeros(new Shape(sizes[e], xn.getShape().get(1)), xn.getDataType())
                        : own.forward(sorted.get(new NDIndex().addSliceDim(start[e], start[e + 1])), null));
            }
        }
        NDArray out = (parts.size() == 1 ? parts.get(0) : NDArrays.concat(parts, 0)).get(new NDIndex("{}", m.create(inverse)));
        return common == null ? out : common.add(out);
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

    /** Per expert, its SwiGLU beyond {@link #shared()} (null where it has no channels of its own). */
    public List<GatedMlp> expertMlps() {
        return experts;
    }

    /** The channels every expert uses, run for every row; null when the experts share none. */
    public GatedMlp shared() {
        return shared;
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
        return routerFlops + Math.round(Arrays.stream(expertFlops).average().orElse(0));
    }
}
