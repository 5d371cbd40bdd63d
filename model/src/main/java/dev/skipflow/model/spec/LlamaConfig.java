package dev.skipflow.model.spec;

/**
 * Shape and numerics of a LLaMA-family decoder.
 *
 * @param dim model width
 * @param hiddenDim SwiGLU inner width
 * @param nLayers decoder blocks
 * @param nHeads query heads
 * @param nKvHeads key/value heads (grouped-query attention when fewer than {@code nHeads})
 * @param vocabSize vocabulary size
 * @param seqLen maximum context length the model was trained for
 * @param sharedClassifier whether the LM head reuses the token embedding
 * @param ropeTheta RoPE base
 * @param normEps RMSNorm epsilon
 * @param qkvBias whether q/k/v projections carry biases (Qwen2)
 */
public record LlamaConfig(
        int dim,
        int hiddenDim,
        int nLayers,
        int nHeads,
        int nKvHeads,
        int vocabSize,
        int seqLen,
        boolean sharedClassifier,
        float ropeTheta,
        float normEps,
        boolean qkvBias) {

    public LlamaConfig {
        require(dim > 0 && hiddenDim > 0 && nLayers > 0 && nHeads > 0 && nKvHeads > 0
                && vocabSize > 0 && seqLen > 0, "all sizes must be positive");
        require(dim % nHeads == 0, "dim " + dim + " is not a multiple of n_heads " + nHeads);
        require(nHeads % nKvHeads == 0, "n_heads " + nHeads + " is not a multiple of n_kv_heads " + nKvHeads);
        require((dim / nHeads) % 2 == 0, "head size " + dim / nHeads + " must be even for RoPE");
    }

    private static void require(boolean ok, String what) {
        if (!ok) {
            throw new IllegalArgumentException("Inconsistent model config: " + what);
        }
    }

    public int headSize() {
        return dim / nHeads;
    }

    public int kvDim() {
        return nKvHeads * headSize();
    }

    /** Query heads that share one key/value head. */
    public int groupSize() {
        return nHeads / nKvHeads;
    }

    /** Number of weights, for logs and memory estimates. */
    public long parameterCount() {
        long perLayer = 2L * dim + (long) dim * dim * 2 + 2L * kvDim() * dim + 3L * dim * hiddenDim
                + (qkvBias ? dim + 2L * kvDim() : 0);
        return (long) vocabSize * dim * (sharedClassifier ? 1 : 2) + nLayers * perLayer + dim;
    }

    /** A llama2.c-style config: RoPE theta 10000, eps 1e-5, no biases. */
    public static LlamaConfig llama2c(int dim, int hiddenDim, int nLayers, int nHeads, int nKvHeads,
            int vocabSize, int seqLen, boolean shared) {
        return new LlamaConfig(dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen, shared,
                10000f, 1e-5f, false);
    }
}
