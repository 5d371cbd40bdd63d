package dev.skipflow.model.flops;

import dev.skipflow.model.LlamaConfig;

/**
 * Analytic floating-point operations of one token's work, a multiply-add counted as 2. Attention is
 * counted over the real context the token attends to, so cost grows with position as it does at run time.
 */
public final class FlopCounter {

    private final LlamaConfig c;
    private final long blockFixed;
    private final long perContextPosition;
    private final long head;
    private final long probe;
    private final long kvProjection;

    public FlopCounter(LlamaConfig config) {
        this.c = config;
        long d = c.dim();
        long kv = c.kvDim();
        long h = c.hiddenDim();
        long rmsNorm = 4 * d; // square, sum, scale, weight
        long qkv = 2 * d * (d + 2 * kv) + (c.qkvBias() ? d + 2 * kv : 0);
        long rope = 3 * (d + kv); // per pair: 4 multiplies, 2 adds
        long wo = 2 * d * d;
        long mlp = 2 * d * 2 * h + 4 * h + 2 * h * d; // gate|up, silu*up, down
        long residuals = 2 * d;
        blockFixed = 2 * rmsNorm + qkv + rope + wo + mlp + residuals;
        // per attended position: q.k (2 hd per head), softmax (~5 per head), p.v (2 hd per head)
        perContextPosition = 4L * c.nHeads() * c.headSize() + 5L * c.nHeads();
        head = 4 * d + 2 * d * c.vocabSize();
        // an exit probe: the head, the features from its logits (~4 per logit), the linear classifier
        probe = head + 4L * c.vocabSize() + 2L * (2 + c.nLayers());
        // an exited token's keys/values in a block it skips (CALM-style propagation): norm, k|v projection, RoPE on k
        kvProjection = rmsNorm + 2 * d * 2 * kv + (c.qkvBias() ? 2 * kv : 0) + 3 * kv;
    }

    /** One early-exit probe for one token: final norm, LM head, features and the classifier's decision. */
    public long probe() {
        return probe;
    }

    /** Keys and values of one token in one block computed from a hidden state, without running the block. */
    public long kvProjection() {
        return kvProjection;
    }

    /** One decoder block for a token at {@code position} (it attends to position + 1 keys). */
    public long block(int position) {
        return blockAttending(position + 1);
    }

    /** One decoder block for a token that attends to {@code keys} keys (fewer when others skipped it). */
    public long blockAttending(int keys) {
        return blockFixed + perContextPosition * keys;
    }

    /** Final norm and LM head for one token. */
    public long head() {
        return head;
    }

    /** A token through every block (no head). */
    public long allBlocks(int position) {
        return c.nLayers() * block(position);
    }

    public LlamaConfig config() {
        return c;
    }
}
