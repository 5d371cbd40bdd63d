package dev.skipflow.model.compression;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import dev.skipflow.model.decoder.Block;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.nn.GatedMlp;
import dev.skipflow.model.nn.Linear;
import dev.skipflow.model.nn.LoraLinear;
import dev.skipflow.model.nn.StackedLinear;
import dev.skipflow.model.weights.BlockWeights;
import dev.skipflow.model.weights.LinearWeights;
import dev.skipflow.model.weights.MlpWeights;
import dev.skipflow.model.weights.ModelWeights;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.IntConsumer;

/**
 * LoRA recovery (LLM-Pruner's post-training, after Hu et al.): every block's q, k, v, o, gate, up and down get a
 * low-rank update {@code (alpha / rank) B A} ({@code A} Kaiming-uniform, {@code B} zero, so training starts from the
 * compressed model), trained with DJL's Adam on the next-token loss of calibration text, through the decoder's one
 * forward pass (the adapters run as {@link LoraLinear}s, dropout on their inputs); the frozen weights do not move.
 * The trained updates are then merged into the dense weights ({@link LinearWeights.Lora#merged()}), so the served
 * model costs nothing extra; LLM-Pruner's code keeps them apart.
 *
 * <p>The decoder folds each RMSNorm weight into the input columns of the maps after it and the attention scale
 * into q's rows; the device adapters are trained in that folded form and unfolded exactly on the way back.
 */
public final class LoraRecovery {

    /**
     * @param steps optimizer steps (0 = no recovery)
     * @param docsPerStep documents whose mean losses are averaged per step
     */
    public record Options(int steps, int rank, float alpha, float dropout, float learningRate, int docsPerStep,
            long seed) {
        public Options {
            if (steps < 0) {
                throw new IllegalArgumentException("recovery steps must be >= 0, got " + steps);
            }
            if (rank < 1 || !(alpha > 0) || !(dropout >= 0 && dropout < 1) || !(learningRate > 0) || docsPerStep < 1) {
                throw new IllegalArgumentException("LoRA needs rank >= 1, alpha > 0, dropout in [0, 1), learning rate > 0 "
                        + "and at least 1 document per step; got rank " + rank + ", alpha " + alpha + ", dropout "
                        + dropout + ", learning rate " + learningRate + ", " + docsPerStep + " documents per step");
            }
        }

        public float scale() {
            return alpha / rank;
        }
    }

    /**
     * @param merged the weights with every update merged: what is served
     * @param adapters the same model with the updates kept apart (as {@link LinearWeights.Lora}), for checks
     * @param firstLoss mean loss of the first step
     * @param lastLoss mean loss over the last 10 steps (or all, when fewer)
     * @param skippedSteps steps dropped for a non-finite gradient
     * @param probe the first calibration document, and its logits through the trained device adapters before they
     *     were read back and merged (so the merge can be checked against what was trained)
     */
    public record Result(ModelWeights merged, ModelWeights adapters, double firstLoss, double lastLoss, int skippedSteps,
            int[] probe, float[] probeLogits) {}

    private static final String[] NAMES = {"wq", "wk", "wv", "wo", "w1", "w3", "w2"};

    private LoraRecovery() {}

    /** Trains the adapters on {@code docs} (each at least 2 tokens) and merges them. */
    public static Result recover(ModelWeights w, List<int[]> docs, Options o, Device device, IntConsumer progress) {
        return recover(w, docs, o, device, progress, null);
    }

    /**
     * As {@link #recover(ModelWeights, List, Options, Device, IntConsumer)}; with a {@code teacher} (the dense
     * original) the adapters learn {@link DistillationLoss} from it instead of the next-token loss.
     */
    public static Result recover(ModelWeights w, List<int[]> docs, Options o, Device device, IntConsumer progress,
            ModelWeights teacher) {
        return recover(w, docs, o, device, progress, teacher, teacher == null ? 0 : 1);
    }

    /**
     * As above, with {@code distillWeight} on the distillation loss and the rest on the next-token loss (Hinton et
     * al.'s mix; 1 = distillation alone); a weight above 0 needs the {@code teacher}.
     */
    public static Result recover(ModelWeights w, List<int[]> docs, Options o, Device device, IntConsumer progress,
            ModelWeights teacher, double distillWeight) {
        if (!(distillWeight >= 0 && distillWeight <= 1) || (distillWeight > 0) != (teacher != null)) {
            throw new IllegalArgumentException("a distillation weight in (0, 1] needs the teacher, 0 none; got "
                    + distillWeight + (teacher == null ? " without" : " with") + " a teacher");
        }
        if (docs.stream().noneMatch(d -> d.length >= 2)) {
            throw new IllegalArgumentException("LoRA recovery needs calibration documents of at least 2 tokens");
        }
        List<int[]> usable = docs.stream().filter(d -> d.length >= 2).toList();
        SplittableRandom rnd = new SplittableRandom(o.seed());
        ModelWeights start = withAdapters(w, o, rnd);
        Engine.getInstance().setRandomSeed((int) o.seed()); // the dropout masks
        try (LlamaModel model = new LlamaModel(start, device);
                LlamaModel dense = teacher == null ? null : new LlamaModel(teacher, device)) {
            List<LoraLinear[]> adapters = deviceAdapters(model);
            List<NDArray> params = new ArrayList<>();
            for (LoraLinear[] block : adapters) {
                for (LoraLinear a : block) {
                    a.trainingDropout(o.dropout());
                    params.add(a.adapterA());
                    params.add(a.adapterB());
                }
            }
            params.forEach(p -> p.setRequiresGradient(true));
            Optimizer adam = Optimizer.adam().optLearningRateTracker(Tracker.fixed(o.learningRate())).build();
            double first = Double.NaN;
            double[] recent = new double[Math.min(10, Math.max(1, o.steps()))];
            int skipped = 0;
            for (int step = 1; step <= o.steps(); step++) {
                double loss = 0;
                List<KvCache> caches = new ArrayList<>();
                try (NDManager m = model.newStepManager()) {
                    int[][] batch = new int[o.docsPerStep()][];
                    NDArray[] targets = new NDArray[batch.length];
                    for (int d = 0; d < batch.length; d++) {
                        batch[d] = usable.get(rnd.nextInt(usable.size()));
                        targets[d] = dense == null ? null : DistillationLoss.teacher(dense, m, batch[d]);
                    }
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        NDArray total = m.zeros(new ai.djl.ndarray.types.Shape());
                        for (int d = 0; d < batch.length; d++) {
                            int[] doc = batch[d];
                            KvCache cache = new KvCache(model, 1, doc.length);
                            caches.add(cache);
                            total = total.add(dense == null ? NextTokenLoss.of(model, cache, m, doc)
                                    : DistillationLoss.of(model, cache, m, doc, targets[d], distillWeight));
                        }
                        total = total.div(o.docsPerStep());
                        loss = total.getFloat();
                        gc.backward(total);
                    }
                } finally {
                    caches.forEach(KvCache::close);
                }
                if (!Gradients.clippedStep(adam, "lora", params, 1.0)) {
                    skipped++;
                }
                if (step == 1) {
                    first = loss;
                }
                recent[(step - 1) % recent.length] = loss;
                progress.accept(step);
            }
            double last = 0;
            int counted = Math.min(o.steps(), recent.length);
            for (int i = 0; i < counted; i++) {
                last += recent[i];
            }
            last = counted == 0 ? Double.NaN : last / counted;
            for (LoraLinear[] block : adapters) {
                for (LoraLinear a : block) {
                    a.trainingDropout(0f);
                }
            }
            int[] probe = usable.get(0);
            float[] probeLogits;
            try (KvCache cache = new KvCache(model, 1, probe.length); NDManager m = model.newStepManager()) {
                probeLogits = Forward.run(model, cache, m, true,
                        Forward.prompt(0, 0, probe, null, null, false, probe.length, 0), Forward.Plan.DENSE).allLogits();
            }
            ModelWeights trained = hostAdapters(start, adapters, model.spec().headSize(), o);
            return new Result(merge(trained), trained, first, last, skipped, probe, probeLogits);
        }
    }

    /** Every LoRA update merged into its dense matrix. */
    public static ModelWeights merge(ModelWeights w) {
        List<BlockWeights> blocks = new ArrayList<>();
        for (BlockWeights b : w.blocks()) {
            MlpWeights.Gated g = gated(b, -1);
            blocks.add(new BlockWeights(b.rmsAtt(), merged(b.wq()), merged(b.wk()), merged(b.wv()), merged(b.wo()),
                    b.rmsFfn(), new MlpWeights.Gated(merged(g.gate()), merged(g.up()), merged(g.down()))));
        }
        return new ModelWeights(w.spec(), w.tokenEmbedding(), blocks, w.rmsFinal(), w.classifier(), w.source());
    }

    private static LinearWeights merged(LinearWeights l) {
        return l instanceof LinearWeights.Lora lora ? lora.merged() : l;
    }

    /** Each block's seven maps as dense + LoRA: A Kaiming-uniform (bound 1 / sqrt(in), as PEFT), B zero. */
    static ModelWeights withAdapters(ModelWeights w, Options o, SplittableRandom rnd) {
        List<BlockWeights> blocks = new ArrayList<>();
        for (int l = 0; l < w.blocks().size(); l++) {
            BlockWeights b = w.blocks().get(l);
            MlpWeights.Gated g = gated(b, l);
            LinearWeights[] maps = {b.wq(), b.wk(), b.wv(), b.wo(), g.gate(), g.up(), g.down()};
            LinearWeights[] lora = new LinearWeights[maps.length];
            for (int i = 0; i < maps.length; i++) {
                if (!(maps[i] instanceof LinearWeights.Dense d)) {
                    throw new IllegalArgumentException("LoRA recovery needs dense maps; block " + l + "'s " + NAMES[i]
                            + " is " + maps[i].getClass().getSimpleName());
                }
                float bound = (float) (1 / Math.sqrt(d.in()));
                float[] a = new float[o.rank() * d.in()];
                for (int k = 0; k < a.length; k++) {
                    a[k] = (float) ((rnd.nextDouble() * 2 - 1) * bound);
                }
                lora[i] = new LinearWeights.Lora(d, o.rank(), a, new float[d.out() * o.rank()], o.scale());
            }
            blocks.add(new BlockWeights(b.rmsAtt(), lora[0], lora[1], lora[2], lora[3], b.rmsFfn(),
                    new MlpWeights.Gated(lora[4], lora[5], lora[6])));
        }
        return new ModelWeights(w.spec(), w.tokenEmbedding(), blocks, w.rmsFinal(), w.classifier(), w.source());
    }

    private static MlpWeights.Gated gated(BlockWeights b, int layer) {
        if (!(b.mlp() instanceof MlpWeights.Gated g)) {
            throw new IllegalArgumentException("LoRA recovery needs gated MLPs; block " + layer + " is a mixture of experts");
        }
        return g;
    }

    /** Per block, its device adapters in the order of {@link #NAMES}. */
    private static List<LoraLinear[]> deviceAdapters(LlamaModel model) {
        List<LoraLinear[]> out = new ArrayList<>();
        for (int l = 0; l < model.spec().nLayers(); l++) {
            Block b = model.block(l);
            List<Linear> qkv = ((StackedLinear) b.qkv()).parts();
            List<Linear> gateUp = ((StackedLinear) ((GatedMlp) b.mlp()).gateUp()).parts();
            out.add(new LoraLinear[] {(LoraLinear) qkv.get(0), (LoraLinear) qkv.get(1), (LoraLinear) qkv.get(2),
                (LoraLinear) b.wo(), (LoraLinear) gateUp.get(0), (LoraLinear) gateUp.get(1),
                (LoraLinear) ((GatedMlp) b.mlp()).down()});
        }
        return out;
    }

    /**
     * The trained device adapters back in the host layout. On the device {@code A^T} holds {@code A diag(norm)} (the
     * norm folded into the input columns of q, k, v, gate and up) and {@code B^T} holds {@code c scale B} (c the
     * attention scale for q, else 1); both are undone here. A column whose norm weight is 0 gets no update: its
     * input is always 0.
     */
    private static ModelWeights hostAdapters(ModelWeights start, List<LoraLinear[]> device, int headSize, Options o) {
        float attentionScale = (float) (1.0 / Math.sqrt(headSize));
        List<BlockWeights> blocks = new ArrayList<>();
        for (int l = 0; l < start.blocks().size(); l++) {
            BlockWeights b = start.blocks().get(l);
            MlpWeights.Gated g = (MlpWeights.Gated) b.mlp();
            LinearWeights[] maps = {b.wq(), b.wk(), b.wv(), b.wo(), g.gate(), g.up(), g.down()};
            float[][] norms = {b.rmsAtt(), b.rmsAtt(), b.rmsAtt(), null, b.rmsFfn(), b.rmsFfn(), null};
            LinearWeights[] out = new LinearWeights[maps.length];
            for (int i = 0; i < maps.length; i++) {
                LinearWeights.Lora host = (LinearWeights.Lora) maps[i];
                LoraLinear dev = device.get(l)[i];
                int in = host.in();
                int outDim = host.out();
                int r = host.rank();
                float[] aT = dev.adapterA().toFloatArray(); // [in, r]
                float[] bT = dev.adapterB().toFloatArray(); // [r, out]
                float[] a = new float[r * in];
                for (int j = 0; j < in; j++) {
                    float s = norms[i] == null ? 1f : norms[i][j];
                    for (int k = 0; k < r; k++) {
                        a[k * in + j] = s == 0f ? 0f : aT[j * r + k] / s;
                    }
                }
                float unscale = 1f / (o.scale() * (i == 0 ? attentionScale : 1f));
                float[] bb = new float[outDim * r];
                for (int k = 0; k < r; k++) {
                    for (int j = 0; j < outDim; j++) {
                        bb[j * r + k] = bT[k * outDim + j] * unscale;
                    }
                }
                out[i] = new LinearWeights.Lora(host.base(), r, a, bb, host.scale());
            }
            blocks.add(new BlockWeights(b.rmsAtt(), out[0], out[1], out[2], out[3], b.rmsFfn(),
                    new MlpWeights.Gated(out[4], out[5], out[6])));
        }
        return new ModelWeights(start.spec(), start.tokenEmbedding(), blocks, start.rmsFinal(), start.classifier(),
                start.source());
    }
}
