package dev.skipflow.model.compression.moe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * ToMoE's hypernetwork: a bidirectional GRU (hidden 64 per direction) runs over the blocks (sequence) for each of
 * the E experts (batch), on fixed random inputs of size 32; its 128-d output per block and expert goes through a
 * LayerNorm, GELU and a Linear(128 -> hidden) to that expert's channel logits. Only the GRU, the norms and the
 * decoders learn; the inputs stay fixed.
 *
 * <p>Every parameter is held input-major ({@code [in, out]}), so each op reads {@code step array op parameter} and
 * its result belongs to the step's manager (DJL attaches a result to its first operand's manager).
 */
final class Hypernetwork {

    static final int INPUT = 32;
    static final int HIDDEN = 64;
    static final int EMBEDDING = 2 * HIDDEN;

    private final int layers;
    private final int experts;
    private final float[] inputs; // [layers, experts, INPUT]
    private final Direction forward;
    private final Direction backward;
    private final List<NDArray> lnGain = new ArrayList<>();
    private final List<NDArray> lnBias = new ArrayList<>();
    private final List<NDArray> decoder = new ArrayList<>(); // [EMBEDDING, hidden_l]
    private final List<NDArray> parameters = new ArrayList<>();

    /** One GRU direction: W_ih^T [INPUT, 3H], W_hh^T [H, 3H], biases [3H], gates in PyTorch's order r, z, n. */
    private record Direction(NDArray wih, NDArray whh, NDArray bih, NDArray bhh) {}

    Hypernetwork(NDManager manager, int[] hidden, int experts, SplittableRandom rnd) {
        this.layers = hidden.length;
        this.experts = experts;
        inputs = new float[layers * experts * INPUT];
        for (int i = 0; i < inputs.length; i++) {
            inputs[i] = (float) gaussian(rnd);
        }
        forward = direction(manager, rnd);
        backward = direction(manager, rnd);
        for (int h : hidden) {
            lnGain.add(param(manager, ones(EMBEDDING), EMBEDDING));
            lnBias.add(param(manager, new float[EMBEDDING], EMBEDDING));
            decoder.add(param(manager, uniform(rnd, EMBEDDING * h, 1 / Math.sqrt(EMBEDDING)), EMBEDDING, h));
        }
    }

    private Direction direction(NDManager m, SplittableRandom rnd) {
        double bound = 1 / Math.sqrt(HIDDEN); // PyTorch's GRU initialisation
        return new Direction(param(m, uniform(rnd, INPUT * 3 * HIDDEN, bound), INPUT, 3 * HIDDEN),
                param(m, uniform(rnd, HIDDEN * 3 * HIDDEN, bound), HIDDEN, 3 * HIDDEN),
                param(m, uniform(rnd, 3 * HIDDEN, bound), 3 * HIDDEN),
                param(m, uniform(rnd, 3 * HIDDEN, bound), 3 * HIDDEN));
    }

    private NDArray param(NDManager m, float[] values, long... shape) {
        NDArray p = m.create(values, new Shape(shape));
        p.setRequiresGradient(true);
        parameters.add(p);
        return p;
    }

    List<NDArray> parameters() {
        return parameters;
    }

    /** Per block, the experts' channel logits {@code [experts, hidden_l]}, in {@code step}'s manager. */
    List<NDArray> logits(NDManager step) {
        NDArray x = step.create(inputs, new Shape(layers, experts, INPUT));
        NDArray[] fwd = run(step, x, forward, false);
        NDArray[] bwd = run(step, x, backward, true);
        List<NDArray> out = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            NDArray e = fwd[l].concat(bwd[l], 1); // [experts, 128]
            NDArray mean = e.mean(new int[] {1}, true);
            NDArray centered = e.sub(mean);
            NDArray var = centered.square().mean(new int[] {1}, true);
            NDArray normed = centered.div(var.add(1e-5f).sqrt()).mul(lnGain.get(l)).add(lnBias.get(l));
            out.add(Activation.gelu(normed).matMul(decoder.get(l)));
        }
        return out;
    }

    /** A GRU direction over the blocks; per block its hidden state {@code [experts, HIDDEN]}. */
    private NDArray[] run(NDManager step, NDArray x, Direction d, boolean reverse) {
        NDArray gi = x.reshape(layers * experts, INPUT).matMul(d.wih()).add(d.bih()).reshape(layers, experts, 3 * HIDDEN);
        NDArray h = step.zeros(new Shape(experts, HIDDEN));
        NDArray[] out = new NDArray[layers];
        for (int i = 0; i < layers; i++) {
            int t = reverse ? layers - 1 - i : i;
            NDArray g = gi.get(t);
            NDArray gh = h.matMul(d.whh()).add(d.bhh());
            NDArray r = Activation.sigmoid(g.get(":, 0:" + HIDDEN).add(gh.get(":, 0:" + HIDDEN)));
            NDArray z = Activation.sigmoid(g.get(":, " + HIDDEN + ":" + 2 * HIDDEN).add(gh.get(":, " + HIDDEN + ":" + 2 * HIDDEN)));
            NDArray n = g.get(":, " + 2 * HIDDEN + ":").add(r.mul(gh.get(":, " + 2 * HIDDEN + ":"))).tanh();
            h = n.sub(z.mul(n)).add(z.mul(h)); // (1 - z) n + z h
            out[t] = h;
        }
        return out;
    }

    private static float[] ones(int n) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, 1f);
        return a;
    }

    static float[] uniform(SplittableRandom rnd, int n, double bound) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) ((rnd.nextDouble() * 2 - 1) * bound);
        }
        return a;
    }

    static double gaussian(SplittableRandom rnd) {
        double u = Math.max(rnd.nextDouble(), 1e-300);
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd.nextDouble());
    }

    /** A standard Gumbel sample, {@code -log(-log U)}. */
    static float gumbel(SplittableRandom rnd) {
        double u = Math.min(Math.max(rnd.nextDouble(), 1e-20), 1 - 1e-12);
        return (float) -Math.log(-Math.log(u));
    }
}
