package dev.skipflow.model.weights;

import dev.skipflow.model.spec.BlockSpec;
import dev.skipflow.model.spec.ModelSpec;
import java.util.ArrayList;
import java.util.List;

/**
 * Host-side fp32 weights of a decoder whose blocks may each have their own shape and kinds of linear and MLP
 * (pruned, low-rank, mixture of experts). The spec is checked against the tensors on construction.
 */
public record ModelWeights(ModelSpec spec, float[] tokenEmbedding, List<BlockWeights> blocks, float[] rmsFinal,
        float[] classifier, String source) {

    public ModelWeights {
        blocks = List.copyOf(blocks);
        long ve = (long) spec.vocabSize() * spec.dim();
        if (tokenEmbedding.length != ve || classifier.length != ve || rmsFinal.length != spec.dim()) {
            throw new IllegalArgumentException("embedding, classifier or final norm do not fit vocab " + spec.vocabSize()
                    + " x dim " + spec.dim());
        }
        if (blocks.size() != spec.nLayers()) {
            throw new IllegalArgumentException("spec has " + spec.nLayers() + " blocks, weights " + blocks.size());
        }
        for (int l = 0; l < blocks.size(); l++) {
            BlockSpec implied = blocks.get(l).spec(spec.dim(), spec.headSize());
            if (!implied.equals(spec.block(l))) {
                throw new IllegalArgumentException("block " + l + ": spec says " + spec.block(l) + " but the weights are "
                        + implied);
            }
        }
    }

    /** The per-block form of a uniform llama2.c / Hugging Face checkpoint. */
    public static ModelWeights of(LlamaWeights w) {
        var c = w.config();
        int d = c.dim();
        int kv = c.kvDim();
        int h = c.hiddenDim();
        List<BlockWeights> blocks = new ArrayList<>();
        for (int l = 0; l < c.nLayers(); l++) {
            boolean bias = c.qkvBias();
            blocks.add(new BlockWeights(w.rmsAtt()[l],
                    new LinearWeights.Dense(d, d, w.wq()[l], bias ? w.bq()[l] : null),
                    new LinearWeights.Dense(kv, d, w.wk()[l], bias ? w.bk()[l] : null),
                    new LinearWeights.Dense(kv, d, w.wv()[l], bias ? w.bv()[l] : null),
                    new LinearWeights.Dense(d, d, w.wo()[l]),
                    w.rmsFfn()[l],
                    new MlpWeights.Gated(new LinearWeights.Dense(h, d, w.w1()[l]), new LinearWeights.Dense(h, d, w.w3()[l]),
                            new LinearWeights.Dense(d, h, w.w2()[l]))));
        }
        return new ModelWeights(ModelSpec.uniform(c), w.tokenEmbedding(), blocks, w.rmsFinal(), w.classifier(), w.source());
    }

    /**
     * These weights with other blocks (pruned, factored, converted): each block's spec is read from its tensors, and
     * the original spec is kept, so savings stay counted against the first model of the chain.
     */
    public ModelWeights withBlocks(List<BlockWeights> newBlocks) {
        List<BlockSpec> specs = new ArrayList<>();
        for (BlockWeights b : newBlocks) {
            specs.add(b.spec(spec.dim(), spec.headSize()));
        }
        ModelSpec s = new ModelSpec(spec.dim(), spec.headSize(), spec.vocabSize(), spec.seqLen(), spec.sharedClassifier(),
                spec.ropeTheta(), spec.normEps(), spec.qkvBias(), specs, spec.original());
        return new ModelWeights(s, tokenEmbedding, newBlocks, rmsFinal, classifier, source);
    }

    /** {@link #withBlocks} with block {@code layer} replaced. */
    public ModelWeights withBlock(int layer, BlockWeights block) {
        List<BlockWeights> b = new ArrayList<>(blocks);
        b.set(layer, block);
        return withBlocks(b);
    }

    public long parameterCount() {
        long n = tokenEmbedding.length + rmsFinal.length + (classifier == tokenEmbedding ? 0 : classifier.length);
        for (BlockWeights b : blocks) {
            n += b.parameters();
        }
        return n;
    }

    @Override
    public String toString() {
        return "ModelWeights[" + source + ", " + spec.nLayers() + " blocks: " + spec.describeBlocks() + "]";
    }
}
