package dev.skipflow.model;

import dev.skipflow.model.spec.LlamaConfig;
import dev.skipflow.model.weights.LlamaWeights;

/**
 * A plain-Java scalar forward pass written like llama2.c's run.c: one token at a time, explicit loops,
 * a KV cache of float arrays. The reference the DJL decoder is checked against. Test code only.
 */
public final class ScalarLlama {

    private final LlamaWeights w;
    private final LlamaConfig p;
    // run state
    private final float[] x;
    private final float[] xb;
    private final float[] xb2;
    private final float[] hb;
    private final float[] hb2;
    private final float[] q;
    private final float[] att;
    private final float[] logits;
    private final float[][] keyCache; // [layer][seq * kvDim]
    private final float[][] valueCache;

    public ScalarLlama(LlamaWeights w) {
        this.w = w;
        this.p = w.config();
        x = new float[p.dim()];
        xb = new float[p.dim()];
        xb2 = new float[p.dim()];
        hb = new float[p.hiddenDim()];
        hb2 = new float[p.hiddenDim()];
        q = new float[p.dim()];
        att = new float[p.seqLen()];
        logits = new float[p.vocabSize()];
        keyCache = new float[p.nLayers()][p.seqLen() * p.kvDim()];
        valueCache = new float[p.nLayers()][p.seqLen() * p.kvDim()];
    }

    static void rmsnorm(float[] o, float[] x, float[] weight, float eps) {
        float ss = 0f;
        for (float v : x) {
            ss += v * v;
        }
        ss /= x.length;
        ss += eps;
        ss = 1.0f / (float) Math.sqrt(ss);
        for (int j = 0; j < x.length; j++) {
            o[j] = weight[j] * (ss * x[j]);
        }
    }

    static void softmax(float[] x, int size) {
        float max = x[0];
        for (int i = 1; i < size; i++) {
            max = Math.max(max, x[i]);
        }
        float sum = 0f;
        for (int i = 0; i < size; i++) {
            x[i] = (float) Math.exp(x[i] - max);
            sum += x[i];
        }
        for (int i = 0; i < size; i++) {
            x[i] /= sum;
        }
    }

    /** W (d,n) @ x (n,) -> xout (d,), W row-major at offset 0. */
    static void matmul(float[] xout, float[] x, float[] wt, int n, int d) {
        for (int i = 0; i < d; i++) {
            float val = 0f;
            for (int j = 0; j < n; j++) {
                val += wt[i * n + j] * x[j];
            }
            xout[i] = val;
        }
    }

    /** Logits for {@code token} at {@code pos}; earlier positions must have been fed in order. */
    public float[] forward(int token, int pos) {
        return forward(token, pos, -1);
    }

    /**
     * The same, but the token stops after block {@code exitAfter} (-1: never): its logits are the final norm and
     * head on its hidden state there, and in every later block only its key and value are computed, from that
     * same hidden state (early exit with CALM's propagation), written plainly, loop by loop.
     */
    public float[] forward(int token, int pos, int exitAfter) {
        int dim = p.dim();
        int kvDim = p.kvDim();
        int kvMul = p.groupSize();
        int hidden = p.hiddenDim();
        int headSize = p.headSize();
        System.arraycopy(w.tokenEmbedding(), token * dim, x, 0, dim);
        float[] k = new float[kvDim];
        float[] v = new float[kvDim];
        for (int l = 0; l < p.nLayers(); l++) {
            if (exitAfter >= 0 && l > exitAfter) {
                rmsnorm(xb, x, w.rmsAtt()[l], p.normEps());
                matmul(k, xb, w.wk()[l], dim, kvDim);
                matmul(v, xb, w.wv()[l], dim, kvDim);
                if (p.qkvBias()) {
                    for (int i = 0; i < kvDim; i++) {
                        k[i] += w.bk()[l][i];
                        v[i] += w.bv()[l][i];
                    }
                }
                for (int i = 0; i < kvDim; i += 2) {
                    int headDim = i % headSize;
                    float freq = 1.0f / (float) Math.pow(p.ropeTheta(), headDim / (float) headSize);
                    float val = pos * freq;
                    float fcr = (float) Math.cos(val);
                    float fci = (float) Math.sin(val);
                    float v0 = k[i];
                    float v1 = k[i + 1];
                    k[i] = v0 * fcr - v1 * fci;
                    k[i + 1] = v0 * fci + v1 * fcr;
                }
                System.arraycopy(k, 0, keyCache[l], pos * kvDim, kvDim);
                System.arraycopy(v, 0, valueCache[l], pos * kvDim, kvDim);
                continue;
            }
            rmsnorm(xb, x, w.rmsAtt()[l], p.normEps());
            matmul(q, xb, w.wq()[l], dim, dim);
            matmul(k, xb, w.wk()[l], dim, kvDim);
            matmul(v, xb, w.wv()[l], dim, kvDim);
            if (p.qkvBias()) {
                for (int i = 0; i < dim; i++) {
                    q[i] += w.bq()[l][i];
                }
                for (int i = 0; i < kvDim; i++) {
                    k[i] += w.bk()[l][i];
                    v[i] += w.bv()[l][i];
                }
            }
            // RoPE: rotate adjacent pairs of each head
            for (int i = 0; i < dim; i += 2) {
                int headDim = i % headSize;
                float freq = 1.0f / (float) Math.pow(p.ropeTheta(), headDim / (float) headSize);
                float val = pos * freq;
                float fcr = (float) Math.cos(val);
                float fci = (float) Math.sin(val);
                int rotn = i < kvDim ? 2 : 1;
                for (int r = 0; r < rotn; r++) {
                    float[] vec = r == 0 ? q : k;
                    float v0 = vec[i];
                    float v1 = vec[i + 1];
                    vec[i] = v0 * fcr - v1 * fci;
                    vec[i + 1] = v0 * fci + v1 * fcr;
                }
            }
            System.arraycopy(k, 0, keyCache[l], pos * kvDim, kvDim);
            System.arraycopy(v, 0, valueCache[l], pos * kvDim, kvDim);
            for (int h = 0; h < p.nHeads(); h++) {
                int qo = h * headSize;
                int kvo = (h / kvMul) * headSize;
                for (int t = 0; t <= pos; t++) {
                    float score = 0f;
                    for (int i = 0; i < headSize; i++) {
                        score += q[qo + i] * keyCache[l][t * kvDim + kvo + i];
                    }
                    att[t] = score / (float) Math.sqrt(headSize);
                }
                softmax(att, pos + 1);
                for (int i = 0; i < headSize; i++) {
                    xb[qo + i] = 0f;
                }
                for (int t = 0; t <= pos; t++) {
                    float a = att[t];
                    for (int i = 0; i < headSize; i++) {
                        xb[qo + i] += a * valueCache[l][t * kvDim + kvo + i];
                    }
                }
            }
            matmul(xb2, xb, w.wo()[l], dim, dim);
            for (int i = 0; i < dim; i++) {
                x[i] += xb2[i];
            }
            rmsnorm(xb, x, w.rmsFfn()[l], p.normEps());
            matmul(hb, xb, w.w1()[l], dim, hidden);
            matmul(hb2, xb, w.w3()[l], dim, hidden);
            for (int i = 0; i < hidden; i++) {
                float val = hb[i];
                val *= 1.0f / (1.0f + (float) Math.exp(-val)); // silu
                hb[i] = val * hb2[i];
            }
            matmul(xb, hb, w.w2()[l], hidden, dim);
            for (int i = 0; i < dim; i++) {
                x[i] += xb[i];
            }
        }
        rmsnorm(x, x, w.rmsFinal(), p.normEps());
        matmul(logits, x, w.classifier(), dim, p.vocabSize());
        return logits.clone();
    }

    /** Greedy generation from a prompt, run.c style: stops on BOS or EOS, or after maxTokens. */
    public int[] greedy(int[] prompt, int maxTokens) {
        int[] out = new int[maxTokens];
        int n = 0;
        int token = prompt[0];
        for (int pos = 0; n < maxTokens; pos++) {
            float[] lg = forward(token, pos);
            int next;
            if (pos < prompt.length - 1) {
                next = prompt[pos + 1];
            } else {
                next = dev.skipflow.model.sampling.Sampler.argmax(lg);
                if (next == 1 || next == 2) {
                    break;
                }
                out[n++] = next;
            }
            token = next;
        }
        return java.util.Arrays.copyOf(out, n);
    }
}
