package dev.skipflow.model.compression.moe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.skipflow.model.nn.GatedMlp;
import dev.skipflow.model.nn.Mlp;
import dev.skipflow.model.nn.Tensors;
import java.util.SplittableRandom;

/**
 * A dense SwiGLU whose channels are masked per token by the expert its router picked: {@code down((silu(gate x) *
 * up x) * (onehot(route(x)) M))} with {@code M [experts, hidden]} the experts' channel masks. In training the route
 * is a hard Gumbel-softmax (temperature tau) with a straight-through gradient and M a straight-through hard
 * Gumbel-sigmoid (made by the trainer); with {@code noise} null the route is the router's argmax, as served.
 * Differentiable in the router, the masks and the input; the dense weights are the model's, frozen.
 */
final class MaskedMlp implements Mlp {

    private final GatedMlp dense;
    private final NDArray router; // [dim, experts], on the normalized input (the norm weight not applied)
    private final NDArray masks; // [experts, hidden]
    private final float tau;
    private final SplittableRandom noise;
    private NDArray hard; // [rows, experts], the last call's one-hot routes
    private NDArray probabilities; // [rows, experts], softmax of the router's scores

    MaskedMlp(GatedMlp dense, NDArray router, NDArray masks, float tau, SplittableRandom noise) {
        this.dense = dense;
        this.router = router;
        this.masks = masks;
        this.tau = tau;
        this.noise = noise;
    }

    @Override
    public NDArray forward(NDArray xn, long[] flops) {
        int n = (int) xn.getShape().get(0);
        int experts = (int) router.getShape().get(1);
        NDArray scores = xn.matMul(router);
        probabilities = scores.softmax(-1);
        NDArray route;
        if (noise != null) {
            float[] g = new float[n * experts];
            for (int i = 0; i < g.length; i++) {
                g[i] = Hypernetwork.gumbel(noise);
            }
            NDArray y = scores.add(xn.getManager().create(g, new Shape(n, experts))).div(tau).softmax(-1);
            hard = y.argMax(-1).oneHot(experts).toType(DataType.FLOAT32, false);
            route = hard.sub(y.stopGradient()).add(y); // straight through
        } else {
            hard = scores.argMax(-1).oneHot(experts).toType(DataType.FLOAT32, false);
            route = hard;
        }
        NDArray tokenMasks = route.matMul(masks);
        NDArray gu = dense.gateUp().forward(xn);
        int h = dense.hidden();
        NDArray y = Tensors.silu(gu.get(":, 0:" + h)).mul(gu.get(":, " + h + ":"));
        return dense.down().forward(y.mul(tokenMasks));
    }

    /** The last call's one-hot routes {@code [rows, experts]} (no gradient). */
    NDArray hard() {
        return hard;
    }

    /** The last call's router probabilities {@code [rows, experts]} (softmax of the scores, no noise). */
    NDArray probabilities() {
        return probabilities;
    }

    @Override
    public long meanFlopsPerToken() {
        return dense.flopsPerToken();
    }

    @Override
    public int hidden() {
        return dense.hidden();
    }
}
