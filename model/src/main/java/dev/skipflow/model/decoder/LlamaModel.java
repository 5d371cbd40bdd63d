package dev.skipflow.model.decoder;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.skipflow.model.flops.FlopCounter;
import dev.skipflow.model.nn.DenseLinear;
import dev.skipflow.model.nn.GatedMlp;
import dev.skipflow.model.nn.Linear;
import dev.skipflow.model.nn.Mlp;
import dev.skipflow.model.nn.MoeMlp;
import dev.skipflow.model.nn.StackedLinear;
import dev.skipflow.model.nn.StackedLowRankLinear;
import dev.skipflow.model.nn.Tensors;
import dev.skipflow.model.spec.BlockSpec;
import dev.skipflow.model.spec.ModelSpec;
import dev.skipflow.model.weights.BlockWeights;
import dev.skipflow.model.weights.Fingerprint;
import dev.skipflow.model.weights.LinearWeights;
import dev.skipflow.model.weights.LlamaWeights;
import dev.skipflow.model.weights.MlpWeights;
import dev.skipflow.model.weights.ModelWeights;
import dev.skipflow.model.weights.Slicing;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;

/**
 * A LLaMA decoder on DJL NDArrays, written to read like the math of llama2.c's {@code forward}:
 * <pre>
 *   x = embed(tokens)
 *   for each block:  x = x + attention(rmsnorm(x))  ;  x = x + mlp(rmsnorm(x))
 *   logits = classifier(rmsnorm(x))
 * </pre>
 * Each block has its own shape ({@link ModelSpec}) and its weights behind {@link Linear} and {@link Mlp}, so
 * pruned, low-rank and mixture-of-experts blocks run through the same code. Projections that share an input are
 * stacked into one map when their kinds allow (q|k|v, gate|up), since per-op overhead, not arithmetic, bounds a
 * small model on CPU. {@link Forward} runs passes over it. Immutable once built; the device arrays are closed
 * with the model.
 */
public final class LlamaModel implements AutoCloseable {

    private final ModelSpec spec;
    private final NDManager manager;
    private final Device device;
    private final NDArray embedding; // [V, dim]
    private final Block[] blocks;
    private final DenseLinear classifier; // final norm weight folded in
    private final NDArray ropeCos; // [seqLen, hd/2 * 2], each cosine twice
    private final NDArray ropeSin; // [seqLen, hd/2 * 2], (-sin, +sin) per pair
    private final String fingerprint;
    private final FlopCounter flops;

    public LlamaModel(LlamaWeights w, Device device) {
        this(ModelWeights.of(w), device);
    }

    public LlamaModel(ModelWeights w, Device device) {
        this.spec = w.spec();
        this.device = device;
        this.fingerprint = Fingerprint.of(w);
        this.manager = NDManager.newBaseManager(device);
        ModelSpec s = spec;
        int d = s.dim();
        embedding = manager.create(w.tokenEmbedding(), new Shape(s.vocabSize(), d));
        blocks = new Block[s.nLayers()];
        List<FlopCounter.BlockCost> costs = new ArrayList<>();
        for (int l = 0; l < s.nLayers(); l++) {
            blocks[l] = buildBlock(l, w.blocks().get(l), s.block(l));
            costs.add(cost(l, s.block(l)));
        }
        classifier = new LinearWeights.Dense(s.vocabSize(), d, w.classifier()).scaleInputs(w.rmsFinal()).build(manager);
        flops = new FlopCounter(costs, FlopCounter.rmsNorm(d) + classifier.flops(1), s.original());
        int hd = s.headSize();
        int half = hd / 2;
        float[] cos = new float[s.seqLen() * half * 2];
        float[] sin = new float[s.seqLen() * half * 2];
        for (int pos = 0; pos < s.seqLen(); pos++) {
            for (int i = 0; i < half; i++) {
                // run.c: freq = 1 / theta^(2i / head_size), angle = pos * freq
                float freq = (float) (1.0 / Math.pow(s.ropeTheta(), (2.0 * i) / hd));
                float angle = pos * freq;
                float fcr = (float) Math.cos(angle);
                float fci = (float) Math.sin(angle);
                int at = (pos * half + i) * 2;
                cos[at] = fcr;
                cos[at + 1] = fcr;
                sin[at] = -fci;
                sin[at + 1] = fci;
            }
        }
        ropeCos = manager.create(cos, new Shape(s.seqLen(), half * 2));
        ropeSin = manager.create(sin, new Shape(s.seqLen(), half * 2));
    }

    /**
     * Folded constants, exact in real arithmetic: an RMSNorm's weight scales the input columns of the maps after
     * it, and attention's 1/sqrt(head size) scales the query rows. Fewer ops per block.
     */
    private Block buildBlock(int layer, BlockWeights w, BlockSpec b) {
        float scale = (float) (1.0 / Math.sqrt(spec.headSize()));
        LinearWeights q = w.wq().scaleOutputs(scale).scaleInputs(w.rmsAtt());
        LinearWeights k = w.wk().scaleInputs(w.rmsAtt());
        LinearWeights v = w.wv().scaleInputs(w.rmsAtt());
        Attention attention = new Attention(layer, stacked(q, k, v), w.wo().build(manager), stacked(k, v), b.heads(),
                b.kvHeads(), spec.headSize());
        return new Block(attention, mlp(w.mlp(), w.rmsFfn()), spec.normEps());
    }

    private Mlp mlp(MlpWeights weights, float[] norm) {
        if (weights instanceof MlpWeights.Gated g) {
            return gated(g, norm, null);
        }
        MlpWeights.Moe m = (MlpWeights.Moe) weights;
        Linear router = m.router().scaleInputs(norm).build(manager);
        int[] shared = sharedChannels(m.experts());
        List<GatedMlp> experts = new ArrayList<>();
        if (shared.length == 0) {
            for (int[] channels : m.experts()) {
                experts.add(gated(m.channels(), norm, channels));
            }
            return new MoeMlp(router, experts, m.hidden());
        }
        for (int[] channels : m.experts()) {
            int[] own = without(channels, shared);
            experts.add(own.length == 0 ? null : gated(m.channels(), norm, own));
        }
        return new MoeMlp(router, gated(m.channels(), norm, shared), experts, m.hidden());
    }

    /**
     * The channels every expert uses, when they are worth a shared part (at least a quarter of the smallest
     * expert: below that the extra matmuls per call cost more than the weights they stop re-reading); else none.
     */
    static int[] sharedChannels(int[][] experts) {
        BitSet common = null;
        int smallest = Integer.MAX_VALUE;
        for (int[] channels : experts) {
            BitSet set = new BitSet();
            for (int c : channels) {
                set.set(c);
            }
            smallest = Math.min(smallest, channels.length);
            if (common == null) {
                common = set;
            } else {
                common.and(set);
            }
        }
        if (common == null || common.cardinality() == 0 || 4 * common.cardinality() < smallest) {
            return new int[0];
        }
        return common.stream().toArray();
    }

    private static int[] without(int[] channels, int[] removed) {
        BitSet drop = new BitSet();
        for (int c : removed) {
            drop.set(c);
        }
        return Arrays.stream(channels).filter(c -> !drop.get(c)).toArray();
    }

    /** SwiGLU over all channels, or over {@code channels} only (one expert, sliced once here). */
    private GatedMlp gated(MlpWeights.Gated g, float[] norm, int[] channels) {
        LinearWeights gate = channels == null ? g.gate() : Slicing.rows(g.gate(), channels);
        LinearWeights up = channels == null ? g.up() : Slicing.rows(g.up(), channels);
        LinearWeights down = channels == null ? g.down() : Slicing.columns(g.down(), channels);
        return new GatedMlp(stacked(gate.scaleInputs(norm), up.scaleInputs(norm)), down.build(manager));
    }

    /** One dense map when the parts allow it, else the parts side by side. */
    private Linear stacked(LinearWeights... parts) {
        LinearWeights.Dense one = Slicing.stackDense(parts);
        if (one != null) {
            return one.build(manager);
        }
        List<StackedLowRankLinear.Part> factored = factoredParts(parts);
        if (factored != null) {
            return StackedLowRankLinear.of(manager, parts[0].in(), factored);
        }
        List<Linear> built = new ArrayList<>();
        for (LinearWeights p : parts) {
            built.add(p.build(manager));
        }
        return new StackedLinear(built);
    }

    /**
     * The parts as one {@link StackedLowRankLinear} (one matmul for every first factor and dense part) when each is
     * dense or two factors and at least one is factored; else null (LoRA and SVD training layers stay separate: their
     * trainers find them as the parts of a {@link StackedLinear}).
     */
    private static List<StackedLowRankLinear.Part> factoredParts(LinearWeights... parts) {
        if (!Boolean.parseBoolean(System.getProperty("skipflow.stackLowRank", "true"))) {
            return null;
        }
        List<StackedLowRankLinear.Part> out = new ArrayList<>();
        boolean any = false;
        for (LinearWeights p : parts) {
            if (p instanceof LinearWeights.LowRank r) {
                out.add(new StackedLowRankLinear.Part(r.out(), r.rank(), r.a(), r.b(), r.bias()));
                any = true;
            } else if (p instanceof LinearWeights.Dense d) {
                out.add(new StackedLowRankLinear.Part(d.out(), 0, d.weight(), null, d.bias()));
            } else {
                return null;
            }
        }
        return any ? out : null;
    }

    /** This block's costs per token, from its own layers. */
    private FlopCounter.BlockCost cost(int layer, BlockSpec b) {
        Attention a = blocks[layer].attention();
        long d = spec.dim();
        long q = b.queryDim(spec.headSize());
        long kv = b.kvDim(spec.headSize());
        long mlp = blocks[layer].mlp().meanFlopsPerToken();
        return new FlopCounter.BlockCost(FlopCounter.attentionFixed(d, q, kv, a.qkv().flops(1), a.wo().flops(1)),
                FlopCounter.perKey(b.heads(), spec.headSize()), mlp,
                FlopCounter.rmsNorm(d) + a.kv().flops(1) + FlopCounter.rope(kv));
    }

    public ModelSpec spec() {
        return spec;
    }

    /** Identifies these weights (the spec and a digest of every tensor), so artifacts trained for them can check. */
    public String fingerprint() {
        return fingerprint;
    }

    /** FLOPs of this model's work per token, and of the dense original's. */
    public FlopCounter flops() {
        return flops;
    }

    public Device device() {
        return device;
    }

    NDManager manager() {
        return manager;
    }

    /** A manager for one step's temporaries, on the model's device; close it when the step is done. */
    public NDManager newStepManager() {
        return manager.newSubManager();
    }

    NDArray ropeCos() {
        return ropeCos;
    }

    NDArray ropeSin() {
        return ropeSin;
    }

    public Block block(int layer) {
        return blocks[layer];
    }

    /** Token embeddings {@code [N, dim]} in the batch's manager. */
    public NDArray embed(TokenBatch batch, int[] tokens) {
        NDArray ids = batch.manager().create(Tensors.toLongs(tokens));
        NDArray x = embedding.get(new NDIndex("{}", ids));
        x.attach(batch.manager());
        return x;
    }

    /** Final norm and LM head: {@code [N, dim] -> [N, vocab]}. */
    public NDArray logits(NDArray x) {
        return classifier.forward(Tensors.rmsNorm(x, spec.normEps()));
    }

    /**
     * Final norm and the LM head's rows for {@code ids[r]} only, per row r of {@code x [N, dim]}: {@code [N, K]},
     * every {@code ids[r]} of length K (early exit's candidate probes).
     */
    public NDArray logitsFor(NDArray x, int[][] ids) {
        int n = ids.length;
        int k = ids[0].length;
        long[] flat = new long[n * k];
        for (int r = 0; r < n; r++) {
            for (int j = 0; j < k; j++) {
                flat[r * k + j] = ids[r][j];
            }
        }
        NDArray idx = x.getManager().create(flat, new ai.djl.ndarray.types.Shape(n, k));
        return classifier.forwardSelected(Tensors.rmsNorm(x, spec.normEps()), idx);
    }

    @Override
    public void close() {
        manager.close();
    }
}
