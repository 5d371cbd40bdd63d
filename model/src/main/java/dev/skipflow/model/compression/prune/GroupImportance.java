package dev.skipflow.model.compression.prune;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import dev.skipflow.model.compression.Gradients;
import dev.skipflow.model.compression.NextTokenLoss;
import dev.skipflow.model.decoder.Block;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.nn.DenseLinear;
import dev.skipflow.model.nn.GatedMlp;
import dev.skipflow.model.nn.Linear;
import dev.skipflow.model.spec.BlockSpec;
import dev.skipflow.model.spec.ModelSpec;
import dev.skipflow.model.weights.BlockWeights;
import dev.skipflow.model.weights.LinearWeights;
import dev.skipflow.model.weights.MlpWeights;
import dev.skipflow.model.weights.ModelWeights;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.IntConsumer;

/**
 * Scores LLM-Pruner's coupled groups in the blocks to prune: an attention group is one KV head with its
 * {@code n_rep} query heads (their q, k, v rows and o columns), an MLP group one channel (its gate and up rows and
 * its down column). Each matrix of a group is scored by summing its per-channel scores over the group's
 * channels; the matrices' scores are then combined by the {@link Aggregation}.
 *
 * <p>Gradients come from the decoder's one forward pass with DJL autograd, the loss being the next-token loss of
 * each calibration sample, on the device matrices as the decoder holds them (q|k|v and gate|up stacked, the
 * RMSNorm weights and attention scale folded in). Element-wise and vector-wise scores are unchanged by that
 * folding: for {@code W' = c W diag(s)}, {@code W' * dL/dW' = W * dL/dW} element by element. Magnitude scores are
 * taken on the stored (unfolded) weights.
 */
final class GroupImportance {

    /** A block's scores, higher = more important: per KV group and per MLP channel. */
    record BlockScores(int layer, double[] groups, double[] channels) {}

    /** Per-channel scores of a block's seven matrices (channel = output row of q, k, v, gate, up; input column of o, down). */
    private record Members(double[] q, double[] k, double[] v, double[] o, double[] gate, double[] up, double[] down) {}

    private GroupImportance() {}

    static List<BlockScores> estimate(ModelWeights w, List<Integer> layers, Importance importance, Aggregation aggregation,
            List<int[]> samples, Device device, long seed, IntConsumer progress) {
        for (int l : layers) {
            requireDenseGated(w.blocks().get(l), l);
        }
        if (importance == Importance.ABLATION) {
            return ablation(w, layers, samples, device, progress);
        }
        List<Members> members = switch (importance) {
            case L1 -> magnitude(w, layers, 1);
            case L2 -> magnitude(w, layers, 2);
            case RANDOM -> null;
            default -> taylor(w, layers, importance, samples, device, progress);
        };
        SplittableRandom rnd = new SplittableRandom(seed);
        int hd = w.spec().headSize();
        List<BlockScores> out = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            int l = layers.get(i);
            BlockSpec b = w.spec().block(l);
            int rep = b.heads() / b.kvHeads();
            double[] groups = new double[b.kvHeads()];
            double[] channels = new double[b.mlpHidden()];
            if (members == null) {
                for (int g = 0; g < groups.length; g++) {
                    groups[g] = rnd.nextDouble();
                }
                for (int c = 0; c < channels.length; c++) {
                    channels[c] = rnd.nextDouble();
                }
            } else {
                Members m = members.get(i);
                for (int g = 0; g < groups.length; g++) {
                    int q0 = g * rep * hd;
                    int q1 = q0 + rep * hd;
                    groups[g] = aggregation.combine(new double[] {sum(m.q, q0, q1), sum(m.k, g * hd, (g + 1) * hd),
                        sum(m.v, g * hd, (g + 1) * hd), sum(m.o, q0, q1)});
                }
                for (int c = 0; c < channels.length; c++) {
                    channels[c] = aggregation.combine(new double[] {m.gate[c], m.up[c], m.down[c]});
                }
            }
            out.add(new BlockScores(l, groups, channels));
        }
        return out;
    }

    /** Units of progress {@link #estimate} reports: samples for the Taylor kinds, groups for ablation, else 1. */
    static int work(ModelSpec spec, List<Integer> layers, Importance importance, int samples) {
        if (importance == Importance.ABLATION) {
            int groups = 0;
            for (int l : layers) {
                groups += spec.block(l).kvHeads() + spec.block(l).mlpHidden();
            }
            return groups;
        }
        return importance.usesGradients() ? samples : 1;
    }

    /**
     * Per group, the rise of the mean next-token loss on the samples when that group alone is removed. A removed
     * MLP channel has its gate and up rows zeroed (its activation is then 0), a removed KV group its v rows (its
     * query heads then add 0 through o): the same function as cutting them out, in the block's own shape.
     */
    private static List<BlockScores> ablation(ModelWeights w, List<Integer> layers, List<int[]> samples, Device device,
            IntConsumer progress) {
        List<int[]> usable = samples.stream().filter(s -> s.length >= 2).toList();
        if (usable.isEmpty()) {
            throw new IllegalArgumentException("ablation importance needs calibration samples of at least 2 tokens");
        }
        double base = meanLoss(w, usable, device);
        int hd = w.spec().headSize();
        int done = 0;
        List<BlockScores> out = new ArrayList<>();
        for (int l : layers) {
            BlockWeights b = w.blocks().get(l);
            MlpWeights.Gated g = (MlpWeights.Gated) b.mlp();
            BlockSpec spec = w.spec().block(l);
            double[] groups = new double[spec.kvHeads()];
            for (int k = 0; k < groups.length; k++) {
                BlockWeights cut = new BlockWeights(b.rmsAtt(), b.wq(), b.wk(), zeroRows(b.wv(), k * hd, (k + 1) * hd),
                        b.wo(), b.rmsFfn(), g);
                groups[k] = meanLoss(w.withBlock(l, cut), usable, device) - base;
                progress.accept(++done);
            }
            double[] channels = new double[spec.mlpHidden()];
            for (int c = 0; c < channels.length; c++) {
                BlockWeights cut = new BlockWeights(b.rmsAtt(), b.wq(), b.wk(), b.wv(), b.wo(), b.rmsFfn(),
                        new MlpWeights.Gated(zeroRows(g.gate(), c, c + 1), zeroRows(g.up(), c, c + 1), g.down()));
                channels[c] = meanLoss(w.withBlock(l, cut), usable, device) - base;
                progress.accept(++done);
            }
            out.add(new BlockScores(l, groups, channels));
        }
        return out;
    }

    private static LinearWeights zeroRows(LinearWeights m, int from, int to) {
        LinearWeights.Dense d = (LinearWeights.Dense) m;
        float[] weight = d.weight().clone();
        java.util.Arrays.fill(weight, from * d.in(), to * d.in(), 0f);
        float[] bias = d.bias() == null ? null : d.bias().clone();
        if (bias != null) {
            java.util.Arrays.fill(bias, from, to, 0f);
        }
        return new LinearWeights.Dense(d.out(), d.in(), weight, bias);
    }

    private static double meanLoss(ModelWeights w, List<int[]> samples, Device device) {
        double sum = 0;
        try (LlamaModel model = new LlamaModel(w, device); NDManager step = model.newStepManager()) {
            for (int[] s : samples) {
                try (KvCache cache = new KvCache(model, 1, s.length); NDManager m = step.newSubManager()) {
                    sum += NextTokenLoss.of(model, cache, m, s).getFloat();
                }
            }
        }
        return sum / samples.size();
    }

    static void requireDenseGated(BlockWeights b, int layer) {
        if (!(b.mlp() instanceof MlpWeights.Gated g)) {
            throw new IllegalArgumentException("block " + layer + " is a mixture of experts; prune a gated (dense) block");
        }
        LinearWeights[] maps = {b.wq(), b.wk(), b.wv(), b.wo(), g.gate(), g.up(), g.down()};
        String[] names = {"wq", "wk", "wv", "wo", "w1", "w3", "w2"};
        for (int i = 0; i < maps.length; i++) {
            if (!(maps[i] instanceof LinearWeights.Dense)) {
                throw new IllegalArgumentException("pruning needs dense maps; block " + layer + "'s " + names[i] + " is "
                        + maps[i].getClass().getSimpleName());
            }
        }
    }

    /** Per channel {@code sum |w|^p} over the stored weights. */
    private static List<Members> magnitude(ModelWeights w, List<Integer> layers, int p) {
        List<Members> out = new ArrayList<>();
        for (int l : layers) {
            BlockWeights b = w.blocks().get(l);
            MlpWeights.Gated g = (MlpWeights.Gated) b.mlp();
            out.add(new Members(rowNorms(b.wq(), p), rowNorms(b.wk(), p), rowNorms(b.wv(), p), columnNorms(b.wo(), p),
                    rowNorms(g.gate(), p), rowNorms(g.up(), p), columnNorms(g.down(), p)));
        }
        return out;
    }

    private static double[] rowNorms(LinearWeights w, int p) {
        float[] m = w.toDense();
        double[] out = new double[w.out()];
        for (int r = 0; r < w.out(); r++) {
            for (int c = 0; c < w.in(); c++) {
                double x = Math.abs(m[r * w.in() + c]);
                out[r] += p == 1 ? x : x * x;
            }
        }
        return out;
    }

    private static double[] columnNorms(LinearWeights w, int p) {
        float[] m = w.toDense();
        double[] out = new double[w.in()];
        for (int r = 0; r < w.out(); r++) {
            for (int c = 0; c < w.in(); c++) {
                double x = Math.abs(m[r * w.in() + c]);
                out[c] += p == 1 ? x : x * x;
            }
        }
        return out;
    }

    /**
     * Gradients of each sample's next-token loss (one backward per sample, so the Fisher diagonal has per-sample
     * squares); then per channel the element-wise, second-order or vector-wise score.
     */
    private static List<Members> taylor(ModelWeights w, List<Integer> layers, Importance importance, List<int[]> samples,
            Device device, IntConsumer progress) {
        List<int[]> usable = samples.stream().filter(s -> s.length >= 2).toList();
        if (usable.isEmpty()) {
            throw new IllegalArgumentException(importance.label() + " importance needs calibration samples of at least 2 "
                    + "tokens");
        }
        boolean fisher = importance == Importance.ELEMENT2;
        try (LlamaModel model = new LlamaModel(w, device); NDManager acc = model.newStepManager()) {
            int n = layers.size();
            NDArray[][] params = new NDArray[n][];
            NDArray[][] sum = new NDArray[n][4];
            NDArray[][] squares = new NDArray[n][4];
            for (int i = 0; i < n; i++) {
                Block b = model.block(layers.get(i));
                GatedMlp mlp = (GatedMlp) b.mlp();
                params[i] = new NDArray[] {weightT(b.qkv()), weightT(b.wo()), weightT(mlp.gateUp()), weightT(mlp.down())};
                for (int j = 0; j < 4; j++) {
                    params[i][j].setRequiresGradient(true);
                    sum[i][j] = acc.zeros(params[i][j].getShape());
                    squares[i][j] = fisher ? acc.zeros(params[i][j].getShape()) : null;
                }
            }
            int done = 0;
            int used = 0;
            for (int[] doc : usable) {
                try (KvCache cache = new KvCache(model, 1, doc.length); NDManager step = model.newStepManager();
                        GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    gc.backward(NextTokenLoss.of(model, cache, step, doc));
                }
                NDArray[][] grads = new NDArray[n][4];
                boolean finite = true;
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < 4; j++) {
                        grads[i][j] = params[i][j].getGradient();
                        finite &= Gradients.finite(grads[i][j]);
                    }
                }
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < 4; j++) {
                        NDArray g = grads[i][j];
                        if (finite) { // a sample whose backward overflowed is left out
                            sum[i][j].addi(g);
                            if (fisher) {
                                try (NDArray sq = g.square()) {
                                    squares[i][j].addi(sq);
                                }
                            }
                        }
                        Gradients.zero(g);
                        g.close();
                    }
                }
                used += finite ? 1 : 0;
                progress.accept(++done);
            }
            if (used == 0) {
                throw new IllegalStateException("every calibration sample's gradient overflowed; no importance to use");
            }
            float count = used;
            List<Members> out = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                BlockSpec spec = w.spec().block(layers.get(i));
                int hd = w.spec().headSize();
                int q = spec.queryDim(hd);
                int kv = spec.kvDim(hd);
                int h = spec.mlpHidden();
                // weightT is [in, out]: output channels are its columns (sum over axis 0), input channels its rows
                double[] qkv = channelScores(params[i][0], sum[i][0], squares[i][0], count, importance, 0);
                double[] o = channelScores(params[i][1], sum[i][1], squares[i][1], count, importance, 1);
                double[] gateUp = channelScores(params[i][2], sum[i][2], squares[i][2], count, importance, 0);
                double[] down = channelScores(params[i][3], sum[i][3], squares[i][3], count, importance, 1);
                out.add(new Members(slice(qkv, 0, q), slice(qkv, q, q + kv), slice(qkv, q + kv, q + 2 * kv), o,
                        slice(gateUp, 0, h), slice(gateUp, h, 2 * h), down));
            }
            return out;
        }
    }

    private static NDArray weightT(Linear l) {
        if (!(l instanceof DenseLinear d)) {
            throw new IllegalStateException("expected a dense device map, got " + l.getClass().getSimpleName());
        }
        return d.weightT();
    }

    /** Per channel along {@code keepAxis}'s complement: element-wise |W g|, W^2 F, or |sum W g| (g the mean gradient). */
    private static double[] channelScores(NDArray weightT, NDArray gradSum, NDArray squareSum, float count,
            Importance importance, int reduceAxis) {
        try (NDManager t = gradSum.getManager().newSubManager()) {
            NDArray w = weightT.duplicate();
            w.attach(t);
            NDArray s;
            if (importance == Importance.ELEMENT2) {
                s = w.mul(w).mul(squareSum).div(count);
            } else {
                s = w.mul(gradSum).div(count);
            }
            NDArray scores;
            if (importance == Importance.VECTOR) {
                scores = s.sum(new int[] {reduceAxis}).abs();
            } else {
                scores = s.abs().sum(new int[] {reduceAxis});
            }
            float[] f = scores.toFloatArray();
            double[] out = new double[f.length];
            for (int i = 0; i < f.length; i++) {
                out[i] = f[i];
            }
            return out;
        }
    }

    private static double[] slice(double[] a, int from, int to) {
        return java.util.Arrays.copyOfRange(a, from, to);
    }

    private static double sum(double[] a, int from, int to) {
        double s = 0;
        for (int i = from; i < to; i++) {
            s += a[i];
        }
        return s;
    }
}
