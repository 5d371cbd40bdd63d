package dev.skipflow.model.spec;


import java.util.List;

/**
 * What a LLaMA-family decoder is, block by block: the model-wide numbers (width, head size, vocabulary,
 * context, RoPE, norm) and one {@link BlockSpec} per block. A compressed model keeps the original's spec in
 * {@link #original()}, so FLOPs saved are counted against the model that was compressed.
 *
 * @param dim residual width (never cut: embeddings and norms keep it)
 * @param headSize channels per attention head (fixed, so RoPE is untouched by pruning)
 * @param vocabSize vocabulary
 * @param seqLen longest context the model was trained for
 * @param sharedClassifier whether the LM head reuses the token embedding
 * @param ropeTheta RoPE base
 * @param normEps RMSNorm epsilon
 * @param qkvBias whether q/k/v projections carry biases (Qwen2)
 * @param blocks per block, its shape
 * @param originalSpec the uncompressed model's spec; null when this is the original
 */
public record ModelSpec(int dim, int headSize, int vocabSize, int seqLen, boolean sharedClassifier, float ropeTheta,
        float normEps, boolean qkvBias, List<BlockSpec> blocks, ModelSpec originalSpec) {

    public ModelSpec {
        if (dim <= 0 || headSize <= 0 || vocabSize <= 0 || seqLen <= 0) {
            throw new IllegalArgumentException("Inconsistent model spec: all sizes must be positive");
        }
        if (headSize % 2 != 0) {
            throw new IllegalArgumentException("Inconsistent model spec: head size " + headSize + " must be even for RoPE");
        }
        if (blocks == null || blocks.isEmpty()) {
            throw new IllegalArgumentException("Inconsistent model spec: a model needs at least one block");
        }
        blocks = List.copyOf(blocks);
        if (originalSpec != null && originalSpec.originalSpec != null) {
            originalSpec = originalSpec.originalSpec; // the chain's root: savings are against the first model
        }
    }

    /** Every block the same shape, as llama2.c and Hugging Face checkpoints are. */
    public static ModelSpec uniform(LlamaConfig c) {
        BlockSpec b = BlockSpec.gated(c.nHeads(), c.nKvHeads(), c.hiddenDim());
        return new ModelSpec(c.dim(), c.headSize(), c.vocabSize(), c.seqLen(), c.sharedClassifier(), c.ropeTheta(),
                c.normEps(), c.qkvBias(), java.util.Collections.nCopies(c.nLayers(), b), null);
    }

    public int nLayers() {
        return blocks.size();
    }

    public BlockSpec block(int layer) {
        return blocks.get(layer);
    }

    /** The model FLOPs saved are counted against: the uncompressed one, or this. */
    public ModelSpec original() {
        return originalSpec == null ? this : originalSpec;
    }

    /** Weights of a dense model of this shape (biases, norms, embedding and an unshared head included). */
    public long parameterCount() {
        long n = (long) vocabSize * dim * (sharedClassifier ? 1 : 2) + dim;
        for (BlockSpec b : blocks) {
            long q = b.queryDim(headSize);
            long kv = b.kvDim(headSize);
            n += 2L * dim + q * dim * 2 + 2 * kv * dim + 3L * dim * b.mlpHidden() + (qkvBias ? q + 2 * kv : 0);
        }
        return n;
    }

    /** One line per distinct block shape, for logs: "16 x [8 heads, 4 kv, mlp 172]". */
    public String describeBlocks() {
        StringBuilder sb = new StringBuilder();
        int run = 0;
        for (int l = 0; l <= blocks.size(); l++) {
            if (l > 0 && (l == blocks.size() || !blocks.get(l).equals(blocks.get(l - 1)))) {
                BlockSpec b = blocks.get(l - 1);
                sb.append(sb.length() == 0 ? "" : ", ").append(run).append(" x [").append(b.heads()).append(" heads, ")
                        .append(b.kvHeads()).append(" kv, mlp ").append(b.mlpHidden())
                        .append(b.mlp() == BlockSpec.MlpKind.MOE ? ", " + b.experts() + " experts" : "").append(']');
                run = 0;
            }
            run++;
        }
        return sb.toString();
    }
}
