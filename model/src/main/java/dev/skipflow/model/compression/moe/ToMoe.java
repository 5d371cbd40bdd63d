package dev.skipflow.model.compression.moe;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import dev.skipflow.model.compression.Calibration;
import dev.skipflow.model.compression.Gradients;
import dev.skipflow.model.compression.prune.MlpChannelPruning;
import dev.skipflow.model.decoder.BlockHook;
import dev.skipflow.model.decoder.Forward;
import dev.skipflow.model.decoder.KvCache;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.io.CompressedCheckpoint;
import dev.skipflow.model.nn.GatedMlp;
import dev.skipflow.model.nn.Mlp;
import dev.skipflow.model.spec.ModelSpec;
import dev.skipflow.model.training.RouterRecipe;
import dev.skipflow.model.weights.BlockWeights;
import dev.skipflow.model.weights.LinearWeights;
import dev.skipflow.model.weights.MlpWeights;
import dev.skipflow.model.weights.ModelWeights;
import dev.skipflow.model.weights.Slicing;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Dense to mixture of experts (ToMoE, Gao et al., arXiv 2501.15316) on the decoder's one forward pass. The model's
 * weights stay frozen; a {@link Hypernetwork} makes each block's E expert channel masks (hard Gumbel-sigmoid,
 * temperature 0.4, offset 3, straight through) and a per-token router per block, Linear(dim -> E) without bias,
 * picks one (hard Gumbel-softmax, straight through). They learn with AdamW (lr 1e-3, weight decay 0.05) on
 * {@code 2 KL(teacher || student) + 16 log(max(r, p) / min(r, p)) + 3 coverage + 1 balance}, the teacher being the
 * dense model itself, r the experts' mean share of the channels, coverage {@code log((1 + c) / (mean(union) + c))}
 * and balance Switch's {@code E sum_e f_e P_e}.
 *
 * <p>Conversion: each expert keeps its {@code round(p * hidden)} channels of highest mask logit (as the public
 * code's export does with its widest expert), so every token runs exactly share p of the MLP; channels no expert
 * uses are removed and each expert keeps its index set; the router is stored in the checkpoint's layout. Serving
 * is deterministic: the router's argmax, no noise.
 *
 * <p>Departures from the public code, for this small-data CPU setting: the mask noise is drawn once per step per
 * expert (the code draws it per token), and the active-parameter term is taken per expert (each expert's share r
 * of its block's channels against p, averaged) rather than on the whole model's widest experts, since conversion
 * keeps {@code round(p * hidden)} channels of every expert: a block trained wider than p would lose channels it
 * learned to use.
 *
 * <p>An extension, off by default ({@link MoeOptions#shared()}): a share of each expert's channels is common to all
 * experts, a shared expert as in DeepSeekMoE, chosen by LLM-Pruner's element1 importance before training and held on
 * while the rest of each expert is learned. Every token then runs the channels the calibration text needs most, and
 * a batch streams their weights once ({@code MoeMlp} runs the shared channels over all rows).
 */
public final class ToMoe {

    /**
     * @param weights the converted model (or, for the static baseline, the pruned dense one)
     * @param experts per block, each expert's channels as indices into the input block's MLP (null for static)
     * @param load per block, calibration tokens each expert took (null for static)
     * @param trainedShare per block, the share of mask entries on after training, before the top-k (null for static)
     * @param firstLoss mean total loss of the first step (NaN without training)
     * @param lastLoss mean total loss of the last 10 steps
     * @param lastKl mean KL term (unweighted) of the last 10 steps
     * @param skippedSteps steps dropped for a non-finite gradient
     * @param step the compression step for the checkpoint's manifest
     */
    public record Result(ModelWeights weights, int[][][] experts, long[][] load, double[] trainedShare,
            double firstLoss, double lastLoss, double lastKl, int skippedSteps, CompressedCheckpoint.Step step) {}

    /** The trained hypernetwork's masks and the routers, before conversion (device layout, on the host). */
    record Trained(float[][] maskLogits, float[][] routers, double firstLoss, double lastLoss, double lastKl,
            int skipped) {}

    private static final float COVERAGE_EPS = 1e-3f;

    private ToMoe() {}

    /**
     * @param calibration tokenized documents to draw training samples from
     * @param extraSettings recorded in the manifest beside the options (e.g. the calibration text)
     */
    public static Result run(ModelWeights input, List<int[]> calibration, MoeOptions o, Map<String, Object> extraSettings,
            Device device, RouterRecipe.Phases phases) {
        ModelSpec spec = input.spec();
        int[] keep = new int[spec.nLayers()];
        for (int l = 0; l < spec.nLayers(); l++) {
            requireDenseGated(input.blocks().get(l), l);
            keep[l] = o.keptChannels(l, spec.block(l).mlpHidden());
        }
        List<int[]> samples = Calibration.samples(calibration, o.samples(), o.sampleLength(), o.seed());
        if (o.baseline() == MoeOptions.Baseline.STATIC) {
            MlpChannelPruning.Result r;
            try (RouterRecipe.Phase phase = phases.open("importance (element1)", samples.size())) {
                r = MlpChannelPruning.run(input, keep, samples, device, o.seed(), phase);
                phase.accept(samples.size());
            }
            return new Result(r.weights(), null, null, null, Double.NaN, Double.NaN, Double.NaN, 0,
                    step(o, input, r.weights(), keep, null, null, null, null, extraSettings, null));
        }
        int[][] shared = new int[spec.nLayers()][0];
        if (o.shared() > 0) {
            double[][] scores;
            try (RouterRecipe.Phase phase = phases.open("shared channels (element1)", samples.size())) {
                scores = MlpChannelPruning.channelScores(input, samples, device, o.seed(), phase);
                phase.accept(samples.size());
            }
            for (int l = 0; l < spec.nLayers(); l++) {
                shared[l] = top(scores[l], o.sharedChannels(keep[l]));
            }
        }
        Trained t;
        try (RouterRecipe.Phase phase = phases.open("ToMoE training", o.steps())) {
            t = train(input, samples, o, shared, device, phase);
        }
        int[][][] experts = new int[spec.nLayers()][][];
        double[] trainedShare = new double[spec.nLayers()];
        for (int l = 0; l < spec.nLayers(); l++) {
            int h = spec.block(l).mlpHidden();
            experts[l] = new int[o.experts()][];
            int on = 0;
            boolean[] common = new boolean[h];
            for (int c : shared[l]) {
                common[c] = true;
            }
            for (int e = 0; e < o.experts(); e++) {
                double[] scores = new double[h];
                for (int c = 0; c < h; c++) {
                    // shared channels are on in every expert, whatever their logit
                    scores[c] = common[c] ? Double.POSITIVE_INFINITY : t.maskLogits()[l][e * h + c];
                    if (scores[c] + o.offset() > 0) {
                        on++;
                    }
                }
                experts[l][e] = top(scores, keep[l]);
            }
            trainedShare[l] = on / (double) (o.experts() * h);
        }
        ModelWeights converted = convert(input, experts, t.routers());
        long[][] load;
        try (RouterRecipe.Phase phase = phases.open("expert load", samples.size())) {
            load = load(converted, samples, device, phase);
        }
        return new Result(converted, experts, load, trainedShare, t.firstLoss(), t.lastLoss(), t.lastKl(), t.skipped(),
                step(o, input, converted, keep, experts, load, trainedShare, t, extraSettings, shared));
    }

    static void requireDenseGated(BlockWeights b, int layer) {
        if (!(b.mlp() instanceof MlpWeights.Gated g)) {
            throw new IllegalArgumentException("block " + layer + " is already a mixture of experts; convert a dense model");
        }
        if (!(g.gate() instanceof LinearWeights.Dense) || !(g.up() instanceof LinearWeights.Dense)
                || !(g.down() instanceof LinearWeights.Dense)) {
            throw new IllegalArgumentException("ToMoE needs dense MLP maps; block " + layer + "'s are "
                    + g.gate().getClass().getSimpleName());
        }
    }

    /**
     * Trains the hypernetwork and the routers on {@code samples}.
     *
     * @param shared per block, channels on in every expert (their masks held at 1, no gradient); may be empty
     */
    static Trained train(ModelWeights input, List<int[]> samples, MoeOptions o, int[][] shared, Device device,
            RouterRecipe.Phase phase) {
        ModelSpec spec = input.spec();
        int layers = spec.nLayers();
        int experts = o.experts();
        int dim = spec.dim();
        int[] hidden = new int[layers];
        long totalHidden = 0;
        for (int l = 0; l < layers; l++) {
            hidden[l] = spec.block(l).mlpHidden();
            totalHidden += hidden[l];
        }
        SplittableRandom rnd = new SplittableRandom(o.seed());
        SplittableRandom noise = new SplittableRandom(o.seed() * 31 + 7);
        try (LlamaModel model = new LlamaModel(input, device); NDManager params = NDManager.newBaseManager(device)) {
            Hypernetwork hn = new Hypernetwork(params, hidden, experts, rnd);
            List<NDArray> routers = new ArrayList<>();
            List<NDArray> all = new ArrayList<>(hn.parameters());
            for (int l = 0; l < layers; l++) {
                NDArray r = params.create(Hypernetwork.uniform(rnd, dim * experts, 1 / Math.sqrt(dim)), new Shape(dim, experts));
                r.setRequiresGradient(true);
                routers.add(r);
                all.add(r);
            }
            List<NDArray> teacher = o.steps() == 0 ? List.of() : teacher(model, params, samples);
            // per block, 1 on the shared channels and its complement (made once: an op on them would put its
            // result on this long-lived manager every step)
            NDArray[] pinned = new NDArray[layers];
            NDArray[] learned = new NDArray[layers];
            for (int l = 0; l < layers; l++) {
                if (shared[l].length > 0) {
                    float[] on = new float[hidden[l]];
                    float[] off = new float[hidden[l]];
                    Arrays.fill(off, 1f);
                    for (int c : shared[l]) {
                        on[c] = 1f;
                        off[c] = 0f;
                    }
                    pinned[l] = params.create(on);
                    learned[l] = params.create(off);
                }
            }
            Optimizer adamW = Optimizer.adamW().optLearningRateTracker(Tracker.fixed(o.learningRate()))
                    .optWeightDecays(o.weightDecay()).build();
            double first = Double.NaN;
            int window = Math.min(10, Math.max(1, o.steps()));
            double[] recent = new double[window];
            double[] recentKl = new double[window];
            int skipped = 0;
            int[] held = {0, 0}; // arrays on the long-lived manager after the last step, steps in a row that grew them
            for (int step = 1; step <= o.steps(); step++) {
                double loss;
                double klValue;
                double ratio;
                double cover;
                List<KvCache> caches = new ArrayList<>();
                try (NDManager m = model.newStepManager(); GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    List<NDArray> logits = hn.logits(m);
                    List<NDArray> masks = new ArrayList<>();
                    NDArray width = m.zeros(new Shape());
                    NDArray active = m.zeros(new Shape());
                    NDArray coverage = m.zeros(new Shape());
                    for (int l = 0; l < layers; l++) {
                        NDArray mask = hardSigmoid(m, logits.get(l), o.offset(), o.temperature(), noise);
                        if (pinned[l] != null) {
                            mask = mask.mul(learned[l]).add(pinned[l]);
                        }
                        masks.add(mask);
                        width = width.add(mask.sum());
                        // per expert, as conversion keeps round(p * hidden) channels of each
                        active = active.add(activeTerm(mask.mean(new int[] {1}), o.activeRatio()).mean());
                        coverage = coverage.add(coverage(mask));
                    }
                    NDArray r = width.div((float) (experts * totalHidden));
                    active = active.div(layers);
                    coverage = coverage.div(layers);
                    NDArray kl = m.zeros(new Shape());
                    NDArray balance = m.zeros(new Shape());
                    for (int d = 0; d < o.docsPerStep(); d++) {
                        int which = rnd.nextInt(samples.size());
                        int[] doc = samples.get(which);
                        MaskedMlp[] mlps = new MaskedMlp[layers];
                        for (int l = 0; l < layers; l++) {
                            mlps[l] = new MaskedMlp((GatedMlp) model.block(l).mlp(), routers.get(l), masks.get(l),
                                    o.temperature(), noise);
                        }
                        BlockHook hook = new BlockHook() {
                            @Override
                            public Mlp mlp(int layer) {
                                return mlps[layer];
                            }
                        };
                        KvCache cache = new KvCache(model, 1, doc.length);
                        caches.add(cache);
                        NDArray student = Forward.run(model, cache, m, true,
                                Forward.prompt(0, 0, doc, null, null, false, doc.length, 0), Forward.Plan.hooked(hook))
                                .logits().logSoftmax(-1);
                        // the teacher's arrays live for the whole training: ops on them would attach their results
                        // (and the graph) to that manager for good, ~5 MB a step; borrowed into the step's, they do not
                        NDArray target = teacher.get(which);
                        if (target.getManager() != m) { // a document drawn twice in a step is borrowed once
                            target.tempAttach(m);
                        }
                        kl = kl.add(kl(target, student));
                        for (MaskedMlp mlp : mlps) {
                            balance = balance.add(balance(mlp.hard(), mlp.probabilities()));
                        }
                    }
                    kl = kl.div(o.docsPerStep());
                    balance = balance.div(o.docsPerStep() * layers);
                    NDArray total = kl.mul(o.klWeight()).add(active.mul(o.lambda())).add(coverage.mul(o.coverageWeight()))
                            .add(balance.mul(o.balanceWeight()));
                    loss = total.getFloat();
                    klValue = kl.getFloat();
                    ratio = r.getFloat();
                    cover = coverage.getFloat();
                    gc.backward(total);
                } finally {
                    caches.forEach(KvCache::close);
                }
                if (!Gradients.clippedStep(adamW, "tomoe", all, 1.0)) {
                    skipped++;
                }
                requireNoGrowth(params, held, step);
                if (step == 1) {
                    first = loss;
                }
                recent[(step - 1) % window] = loss;
                recentKl[(step - 1) % window] = klValue;
                phase.status(String.format("loss %.4f, KL %.4f, active %.3f, coverage %.4f", loss, klValue, ratio, cover));
                phase.accept(step);
            }
            int counted = Math.min(o.steps(), window);
            double last = counted == 0 ? Double.NaN : Arrays.stream(recent, 0, counted).average().orElse(Double.NaN);
            double lastKl = counted == 0 ? Double.NaN : Arrays.stream(recentKl, 0, counted).average().orElse(Double.NaN);
            float[][] maskLogits = new float[layers][];
            float[][] routerValues = new float[layers][];
            try (NDManager m = model.newStepManager()) {
                List<NDArray> logits = hn.logits(m);
                for (int l = 0; l < layers; l++) {
                    maskLogits[l] = logits.get(l).toFloatArray();
                    routerValues[l] = routers.get(l).toFloatArray();
                }
            }
            teacher.forEach(NDArray::close);
            return new Trained(maskLogits, routerValues, first, last, lastKl, skipped);
        }
    }

    /**
     * Fails fast when steps keep leaving arrays on the manager that lives for the whole training (its parameters,
     * their gradients and optimizer state, the teacher): such a leak grows by megabytes a step and once took a
     * 5,000-step run to 24 GB. Counted from step 2, after AdamW has made its state; a leak grows every step, so
     * three growing steps in a row fail and a one-off change does not.
     *
     * @param seen {count after the last step, steps in a row that grew it}; updated
     */
    static void requireNoGrowth(NDManager longLived, int[] seen, int step) {
        int now = ((ai.djl.ndarray.BaseNDManager) longLived).getManagedArrays().size();
        if (step >= 3) {
            seen[1] = now > seen[0] ? seen[1] + 1 : 0;
            if (seen[1] >= 3) {
                throw new IllegalStateException("ToMoE training leaks: the last " + seen[1] + " steps each left arrays on "
                        + "the training's long-lived manager, " + now + " now");
            }
        }
        seen[0] = now;
    }

    /** {@code log(max(r, p) / min(r, p))}: pulls the active share r to the target p from either side. */
    static NDArray activeTerm(NDArray r, double p) {
        return r.log().sub((float) Math.log(p)).abs();
    }

    /**
     * {@code log((1 + c) / (mean(union) + c))} with {@code union = 1 - prod_e (1 - mask_e)} per channel: 0 when the
     * experts together cover every channel. {@code masks [experts, hidden]}.
     */
    static NDArray coverage(NDArray masks) {
        NDManager m = masks.getManager();
        NDArray union = m.ones(new Shape(masks.getShape().get(1))).sub(m.ones(masks.getShape()).sub(masks).prod(new int[] {0}));
        return union.mean().add(COVERAGE_EPS).log().neg().add((float) Math.log(1 + COVERAGE_EPS));
    }

    /** Switch's load balance {@code E sum_e f_e P_e}: f the share of rows routed to e (no gradient), P the mean probability. */
    static NDArray balance(NDArray hard, NDArray probabilities) {
        long experts = hard.getShape().get(1);
        NDArray f = hard.mean(new int[] {0}).stopGradient();
        return f.mul(probabilities.mean(new int[] {0})).sum().mul((float) experts);
    }

    /** Mean over rows of KL(teacher || student), both as log-probabilities {@code [rows, vocab]}. */
    static NDArray kl(NDArray teacher, NDArray student) {
        return teacher.exp().mul(teacher.sub(student)).sum(new int[] {1}).mean();
    }

    /** The hard Gumbel-sigmoid of {@code logits + offset} at temperature tau, straight through. */
    static NDArray hardSigmoid(NDManager m, NDArray logits, float offset, float temperature, SplittableRandom noise) {
        int n = (int) logits.size();
        float[] g = new float[n];
        for (int i = 0; i < n; i++) {
            g[i] = Hypernetwork.gumbel(noise);
        }
        NDArray soft = ai.djl.nn.Activation.sigmoid(
                logits.add(m.create(g, logits.getShape())).add(offset).div(temperature));
        NDArray hard = soft.gt(0.5f).toType(DataType.FLOAT32, false);
        return hard.sub(soft.stopGradient()).add(soft);
    }

    /** The dense model's log-probabilities of every position of every sample (in {@code manager}, no gradient). */
    private static List<NDArray> teacher(LlamaModel model, NDManager manager, List<int[]> samples) {
        List<NDArray> out = new ArrayList<>();
        for (int[] doc : samples) {
            try (KvCache cache = new KvCache(model, 1, doc.length); NDManager m = model.newStepManager()) {
                NDArray lp = Forward.run(model, cache, m, true, Forward.prompt(0, 0, doc, null, null, false, doc.length, 0),
                        Forward.Plan.DENSE).logits().logSoftmax(-1);
                NDArray kept = manager.create(lp.toFloatArray(), lp.getShape());
                out.add(kept);
            }
        }
        return out;
    }

    /**
     * The mixture-of-experts model: in each block the channels some expert uses (the rest removed), each expert's
     * set as indices into them, and the router in the checkpoint's layout ({@code [experts, dim]}, acting on the
     * norm's output with its weight applied: the trained router divided by the norm weight, 0 where that is 0).
     *
     * @param experts per block, each expert's channels into the input block's MLP (increasing, non-empty)
     * @param routers per block, the trained router {@code [dim, experts]} row-major, on the unweighted normalized input
     */
    public static ModelWeights convert(ModelWeights input, int[][][] experts, float[][] routers) {
        ModelSpec spec = input.spec();
        int dim = spec.dim();
        List<BlockWeights> blocks = new ArrayList<>();
        for (int l = 0; l < spec.nLayers(); l++) {
            BlockWeights b = input.blocks().get(l);
            requireDenseGated(b, l);
            MlpWeights.Gated g = (MlpWeights.Gated) b.mlp();
            int count = experts[l].length;
            if (count < 2) {
                throw new IllegalArgumentException("block " + l + ": a mixture needs at least 2 experts, got " + count);
            }
            boolean[] used = new boolean[g.hidden()];
            for (int e = 0; e < count; e++) {
                if (experts[l][e].length == 0) {
                    throw new IllegalArgumentException("block " + l + ": expert " + e + " has an empty channel set");
                }
                for (int c : experts[l][e]) {
                    used[c] = true;
                }
            }
            int[] union = indices(used);
            int[] position = new int[g.hidden()];
            for (int i = 0; i < union.length; i++) {
                position[union[i]] = i;
            }
            int[][] local = new int[count][];
            for (int e = 0; e < count; e++) {
                local[e] = new int[experts[l][e].length];
                for (int i = 0; i < local[e].length; i++) {
                    local[e][i] = position[experts[l][e][i]];
                }
            }
            float[] router = new float[count * dim];
            for (int e = 0; e < count; e++) {
                for (int j = 0; j < dim; j++) {
                    float norm = b.rmsFfn()[j];
                    router[e * dim + j] = norm == 0f ? 0f : routers[l][j * count + e] / norm;
                }
            }
            MlpWeights.Gated kept = new MlpWeights.Gated(Slicing.rows(g.gate(), union), Slicing.rows(g.up(), union),
                    Slicing.columns(g.down(), union));
            BlockWeights moe = new BlockWeights(b.rmsAtt(), b.wq(), b.wk(), b.wv(), b.wo(), b.rmsFfn(),
                    new MlpWeights.Moe(kept, new LinearWeights.Dense(count, dim, router), local));
            blocks.add(moe);
        }
        return input.withBlocks(blocks);
    }

    /** Per block, the tokens of {@code samples} each expert took, served as the checkpoint serves them. */
    public static long[][] load(ModelWeights moe, List<int[]> samples, Device device, java.util.function.IntConsumer progress) {
        FlopAccount account = new FlopAccount();
        int layers = moe.spec().nLayers();
        try (LlamaModel model = new LlamaModel(moe, device)) {
            int done = 0;
            for (int[] doc : samples) {
                try (KvCache cache = new KvCache(model, 1, doc.length); NDManager m = model.newStepManager()) {
                    Forward.run(model, cache, m, true, Forward.prompt(0, 0, doc, account, new int[layers], false,
                            doc.length, doc.length - 1), Forward.Plan.DENSE);
                }
                progress.accept(++done);
            }
        }
        long[][] e = account.savings().experts();
        return e == null ? new long[layers][0] : e;
    }

    private static int[] top(double[] scores, int count) {
        Integer[] order = new Integer[scores.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> {
            int c = Double.compare(scores[b], scores[a]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        int[] out = new int[count];
        for (int i = 0; i < count; i++) {
            out[i] = order[i];
        }
        Arrays.sort(out);
        return out;
    }

    private static int[] indices(boolean[] flag) {
        int k = 0;
        int[] r = new int[flag.length];
        for (int i = 0; i < flag.length; i++) {
            if (flag[i]) {
                r[k++] = i;
            }
        }
        return Arrays.copyOf(r, k);
    }

    private static CompressedCheckpoint.Step step(MoeOptions o, ModelWeights before, ModelWeights after, int[] keep,
            int[][][] experts, long[][] load, double[] trainedShare, Trained t, Map<String, Object> extra, int[][] shared) {
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("activeRatio", o.activeRatio());
        s.put("baseline", o.baseline() == MoeOptions.Baseline.STATIC ? "static" : "none");
        if (o.baseline() == MoeOptions.Baseline.STATIC) {
            s.put("importance", "element1");
        } else {
            s.put("experts", o.experts());
            s.put("shared", o.shared());
            s.put("steps", o.steps());
            s.put("docsPerStep", o.docsPerStep());
            s.put("learningRate", o.learningRate());
            s.put("weightDecay", o.weightDecay());
            s.put("temperature", o.temperature());
            s.put("offset", o.offset());
            s.put("lambda", o.lambda());
            s.put("klWeight", o.klWeight());
            s.put("coverageWeight", o.coverageWeight());
            s.put("balanceWeight", o.balanceWeight());
            s.put("firstLoss", t.firstLoss());
            s.put("lastLoss", t.lastLoss());
            s.put("lastKl", t.lastKl());
            s.put("skippedSteps", t.skipped());
        }
        s.put("samples", o.samples());
        s.put("sampleLength", o.sampleLength());
        s.put("seed", o.seed());
        s.putAll(extra);
        s.put("parametersBefore", before.parameterCount());
        s.put("parametersAfter", after.parameterCount());
        List<Map<String, Object>> blocks = new ArrayList<>();
        for (int l = 0; l < keep.length; l++) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("block", l);
            m.put("activeChannels", keep[l] + "/" + before.spec().block(l).mlpHidden());
            m.put("keptChannels", after.spec().block(l).mlpHidden());
            if (experts != null) {
                m.put("sharedChannels", shared[l].length);
                m.put("trainedShare", trainedShare[l]);
                m.put("calibrationLoad", load[l]);
            }
            blocks.add(m);
        }
        s.put("perBlock", blocks);
        return new CompressedCheckpoint.Step(o.baseline() == MoeOptions.Baseline.STATIC ? "moe-static" : "moe", s);
    }
}
