package dev.skipflow.model.weights;

import dev.skipflow.model.spec.BlockSpec;

/**
 * One decoder block's host weights: attention's RMSNorm and projections (q/k in llama2.c's adjacent-pair
 * RoPE layout), the MLP's RMSNorm and MLP.
 */
public record BlockWeights(float[] rmsAtt, LinearWeights wq, LinearWeights wk, LinearWeights wv, LinearWeights wo,
        float[] rmsFfn, MlpWeights mlp) {

    /** The block's shape implied by the tensors; throws when they disagree with each other. */
    public BlockSpec spec(int dim, int headSize) {
        int q = wq.out();
        int kv = wk.out();
        if (q % headSize != 0 || kv % headSize != 0 || wv.out() != kv) {
            throw new IllegalArgumentException("attention projections [" + q + ", " + kv + ", " + wv.out()
                    + "] are not whole heads of size " + headSize);
        }
        if (wq.in() != dim || wk.in() != dim || wv.in() != dim || wo.out() != dim || wo.in() != q
                || rmsAtt.length != dim || rmsFfn.length != dim) {
            throw new IllegalArgumentException("block weights do not fit width " + dim + ": q [" + q + ", " + wq.in()
                    + "], o [" + wo.out() + ", " + wo.in() + "]");
        }
        int experts = mlp instanceof MlpWeights.Moe m ? m.experts().length : 0;
        return new BlockSpec(q / headSize, kv / headSize, mlp.hidden(),
                experts > 0 ? BlockSpec.MlpKind.MOE : BlockSpec.MlpKind.GATED, experts);
    }

    public long parameters() {
        return 2L * rmsAtt.length + wq.parameters() + wk.parameters() + wv.parameters() + wo.parameters() + mlp.parameters();
    }
}
