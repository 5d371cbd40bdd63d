package dev.skipflow.model.decoder;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import dev.skipflow.model.LlamaConfig;
import dev.skipflow.model.LlamaWeights;

/**
 * A LLaMA decoder on DJL NDArrays, written to read like the math of llama2.c's {@code forward}:
 * <pre>
 *   x = embed(tokens)
 *   for each layer:  x = x + attention(rmsnorm(x))  ;  x = x + mlp(rmsnorm(x))
 *   logits = classifier(rmsnorm(x))
 * </pre>
 * Projections are fused for speed (q|k|v in one matmul, gate|up in one) since per-op overhead, not
 * arithmetic, bounds a small model on CPU. Every method works on the rows of a {@link TokenBatch}; callers
 * may run a block on any subset of rows ({@link TokenBatch#select}) and stop a row after any layer.
 */
public final class LlamaModel implements AutoCloseable {

    private final LlamaConfig config;
    private final NDManager manager;
    private final Device device;
    private final NDArray embedding; // [V, dim]
    private final Layer[] layers;
    private final NDArray finalNorm; // [dim]
    private final NDArray classifierT; // [dim, V]
    private final NDArray ropeCos; // [seqLen, hd/2 * 2], each cosine twice
    private final NDArray ropeSin; // [seqLen, hd/2 * 2], (-sin, +sin) per pair
    private final float attentionScale;

    /** One decoder block's weights, transposed for {@code x [N, in] @ W [in, out]}. */
    private record Layer(NDArray attnNorm, NDArray wqkv, NDArray bqkv, NDArray wo, NDArray ffnNorm, NDArray w13,
            NDArray w2) {}

    public LlamaModel(LlamaWeights w, Device device) {
        this.config = w.config();
        this.device = device;
        this.manager = NDManager.newBaseManager(device);
        LlamaConfig c = config;
        int d = c.dim();
        int kv = c.kvDim();
        int h = c.hiddenDim();
        embedding = manager.create(w.tokenEmbedding(), new Shape(c.vocabSize(), d));
        layers = new Layer[c.nLayers()];
        for (int l = 0; l < c.nLayers(); l++) {
            NDArray wqkv = transposed(concatRows(w.wq()[l], w.wk()[l], w.wv()[l]), d + 2 * kv, d);
            NDArray bqkv = c.qkvBias() ? manager.create(concatRows(w.bq()[l], w.bk()[l], w.bv()[l])) : null;
            NDArray w13 = transposed(concatRows(w.w1()[l], w.w3()[l]), 2 * h, d);
            layers[l] = new Layer(manager.create(w.rmsAtt()[l]), wqkv, bqkv, transposed(w.wo()[l], d, d),
                    manager.create(w.rmsFfn()[l]), w13, transposed(w.w2()[l], d, h));
        }
        finalNorm = manager.create(w.rmsFinal());
        classifierT = transposed(w.classifier(), c.vocabSize(), d);
        int half = c.headSize() / 2;
        float[] cos = new float[c.seqLen() * half * 2];
        float[] sin = new float[c.seqLen() * half * 2];
        for (int pos = 0; pos < c.seqLen(); pos++) {
            for (int i = 0; i < half; i++) {
                // run.c: freq = 1 / theta^(2i / head_size), angle = pos * freq
                double freq = 1.0 / Math.pow(c.ropeTheta(), (2.0 * i) / c.headSize());
                float fcr = (float) Math.cos(pos * (float) freq);
                float fci = (float) Math.sin(pos * (float) freq);
                int at = (pos * half + i) * 2;
                cos[at] = fcr;
                cos[at + 1] = fcr;
                sin[at] = -fci;
                sin[at + 1] = fci;
            }
        }
        ropeCos = manager.create(cos, new Shape(c.seqLen(), half * 2));
        ropeSin = manager.create(sin, new Shape(c.seqLen(), half * 2));
        attentionScale = (float) (1.0 / Math.sqrt(c.headSize()));
    }

    private static float[] concatRows(float[]... parts) {
        int n = 0;
        for (float[] p : parts) {
            n += p.length;
        }
        float[] out = new float[n];
        int at = 0;
        for (float[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    /** Row-major [rows, cols] on the host to a contiguous [cols, rows] NDArray. */
    private NDArray transposed(float[] rowMajor, int rows, int cols) {
        try (NDArray a = manager.create(rowMajor, new Shape(rows, cols))) {
            NDArray t = a.transpose().duplicate(); // contiguous copy, so matmul reads it without strides
            return t;
        }
    }

    public LlamaConfig config() {
        return config;
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

    /** Token embeddings {@code [N, dim]} in the batch's manager. */
    public NDArray embed(TokenBatch batch, int[] tokens) {
        NDArray ids = batch.manager().create(toLongs(tokens));
        NDArray x = embedding.get(new NDIndex("{}", ids));
        x.attach(batch.manager());
        return x;
    }

    /** One decoder block over the batch's rows; writes their keys and values to the cache. */
    public NDArray block(int layer, NDArray x, TokenBatch batch, KvCache cache) {
        Layer w = layers[layer];
        NDArray h = x.add(attention(layer, w, rmsNorm(x, w.attnNorm()), batch, cache));
        return h.add(mlp(w, rmsNorm(h, w.ffnNorm())));
    }

    /** Final norm and LM head: {@code [N, dim] -> [N, vocab]}. */
    public NDArray logits(NDArray x) {
        return rmsNorm(x, finalNorm).matMul(classifierT);
    }

    /** x * w / sqrt(mean(x^2) + eps), per row. */
    private NDArray rmsNorm(NDArray x, NDArray weight) {
        NDArray ms = x.square().mean(new int[] {-1}, true);
        return x.div(ms.add(config.normEps()).sqrt()).mul(weight);
    }

    private NDArray attention(int layer, Layer w, NDArray xn, TokenBatch batch, KvCache cache) {
        LlamaConfig c = config;
        int n = batch.size();
        int d = c.dim();
        int kvH = c.nKvHeads();
        int hd = c.headSize();
        int g = c.groupSize();
        NDArray qkv = xn.matMul(w.wqkv());
        if (w.bqkv() != null) {
            qkv = qkv.add(w.bqkv());
        }
        // RoPE on q and k heads together: pairs (2i, 2i+1) rotate as x*cos + swap(x)*(-sin, +sin).
        NDArray qk = qkv.get(new NDIndex().addAllDim().addSliceDim(0, d + c.kvDim()))
                .reshape(n, c.nHeads() + kvH, hd / 2, 2);
        NDArray rotated = qk.mul(batch.ropeCos()).add(qk.flip(3).mul(batch.ropeSin()))
                .reshape(n, c.nHeads() + kvH, hd);
        NDArray q = rotated.get(new NDIndex().addAllDim().addSliceDim(0, c.nHeads())).mul(attentionScale);
        NDArray k = rotated.get(new NDIndex().addAllDim().addSliceDim(c.nHeads(), c.nHeads() + kvH));
        NDArray v = qkv.get(new NDIndex().addAllDim().addSliceDim(d + c.kvDim(), d + 2L * c.kvDim()))
                .reshape(n, kvH, hd);
        cache.write(layer, batch, k, v);
        NDArray keys = cache.keys(layer, batch);
        NDArray values = cache.values(layer, batch);
        NDArray out;
        int t = batch.context();
        if (batch.isPrefill()) {
            // q [N, kvH*g, hd] -> [kvH, N*g, hd]; keys [kvH, T, hd]; one matmul per kv head group.
            NDArray qh = q.reshape(n, kvH, g, hd).transpose(1, 0, 2, 3).reshape(kvH, (long) n * g, hd);
            NDArray scores = qh.matMul(keys.transpose(0, 2, 1)).reshape(kvH, n, g, t).add(batch.mask());
            NDArray probs = scores.softmax(-1).reshape(kvH, (long) n * g, t);
            out = probs.matMul(values).reshape(kvH, n, g, hd).transpose(1, 0, 2, 3).reshape(n, d);
        } else {
            // q [N, kvH, g, hd] against each row's own history [N, kvH, T, hd].
            NDArray scores = q.reshape(n, kvH, g, hd).matMul(keys.transpose(0, 1, 3, 2)).add(batch.mask());
            out = scores.softmax(-1).matMul(values).reshape(n, d);
        }
        return out.matMul(w.wo());
    }

    private NDArray mlp(Layer w, NDArray xn) {
        int hidden = config.hiddenDim();
        NDArray gateUp = xn.matMul(w.w13());
        NDArray gate = gateUp.get(new NDIndex().addAllDim().addSliceDim(0, hidden));
        NDArray up = gateUp.get(new NDIndex().addAllDim().addSliceDim(hidden, 2L * hidden));
        return Activation.swish(gate, 1f).mul(up).matMul(w.w2());
    }

    static long[] toLongs(int[] a) {
        long[] out = new long[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i];
        }
        return out;
    }

    @Override
    public void close() {
        manager.close();
    }
}
