package dev.skipflow.model.decoder;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import dev.skipflow.model.LlamaConfig;
import dev.skipflow.model.LlamaWeights;
import java.util.function.Consumer;

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
    private final NDArray classifierT; // [dim, V], final norm weight folded in
    private final NDArray ropeCos; // [seqLen, hd/2 * 2], each cosine twice
    private final NDArray ropeSin; // [seqLen, hd/2 * 2], (-sin, +sin) per pair
    private final String fingerprint;
    private final NDIndex qkColumns;
    private final NDIndex vColumns;
    private final NDIndex queryHeads;
    private final NDIndex keyHeads;
    private final NDIndex gateColumns;
    private final NDIndex upColumns;
    private final NDIndex kColumns;
    private final NDIndex vColumnsOfKv;

    /**
     * One decoder block's weights, transposed for {@code x [N, in] @ W [in, out]}; wqkv and w13 carry their
     * rmsnorm weights, wqkv's query part the attention scale.
     */
    private record Layer(NDArray wqkv, NDArray bqkv, NDArray wo, NDArray w13, NDArray w2, NDArray wkv, NDArray bkv) {}

    public LlamaModel(LlamaWeights w, Device device) {
        this.config = w.config();
        this.device = device;
        this.fingerprint = fingerprint(w);
        this.manager = NDManager.newBaseManager(device);
        LlamaConfig c = config;
        int d = c.dim();
        int kv = c.kvDim();
        int h = c.hiddenDim();
        int hd = c.headSize();
        // Folded constants, exact in real arithmetic: rmsnorm's weight scales the input columns of the matmul
        // that follows it, and attention's 1/sqrt(head_size) scales the query rows. Fewer ops per layer.
        float scale = (float) (1.0 / Math.sqrt(hd));
        embedding = manager.create(w.tokenEmbedding(), new Shape(c.vocabSize(), d));
        layers = new Layer[c.nLayers()];
        for (int l = 0; l < c.nLayers(); l++) {
            float[] wq = scaleRows(w.wq()[l], d, scale);
            float[] wqkv = scaleColumns(concatRows(wq, w.wk()[l], w.wv()[l]), d, w.rmsAtt()[l]);
            NDArray bqkv = c.qkvBias()
                    ? manager.create(concatRows(scaleRows(w.bq()[l], 1, scale), w.bk()[l], w.bv()[l])) : null;
            float[] w13 = scaleColumns(concatRows(w.w1()[l], w.w3()[l]), d, w.rmsFfn()[l]);
            // k|v alone (rmsnorm folded in), for keys/values of a token that exited before this block
            float[] wkv = scaleColumns(concatRows(w.wk()[l], w.wv()[l]), d, w.rmsAtt()[l]);
            NDArray bkv = c.qkvBias() ? manager.create(concatRows(w.bk()[l], w.bv()[l])) : null;
            layers[l] = new Layer(transposed(wqkv, d + 2 * kv, d), bqkv, transposed(w.wo()[l], d, d),
                    transposed(w13, 2 * h, d), transposed(w.w2()[l], d, h), transposed(wkv, 2 * kv, d), bkv);
        }
        classifierT = transposed(scaleColumns(w.classifier(), d, w.rmsFinal()), c.vocabSize(), d);
        int half = hd / 2;
        float[] cos = new float[c.seqLen() * half * 2];
        float[] sin = new float[c.seqLen() * half * 2];
        for (int pos = 0; pos < c.seqLen(); pos++) {
            for (int i = 0; i < half; i++) {
                // run.c: freq = 1 / theta^(2i / head_size), angle = pos * freq
                float freq = (float) (1.0 / Math.pow(c.ropeTheta(), (2.0 * i) / hd));
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
        ropeCos = manager.create(cos, new Shape(c.seqLen(), half * 2));
        ropeSin = manager.create(sin, new Shape(c.seqLen(), half * 2));
        qkColumns = columns(0, d + kv);
        vColumns = columns(d + kv, d + 2L * kv);
        queryHeads = new NDIndex().addAllDim().addSliceDim(0, c.nHeads());
        keyHeads = new NDIndex().addAllDim().addSliceDim(c.nHeads(), c.nHeads() + c.nKvHeads());
        gateColumns = columns(0, h);
        upColumns = columns(h, 2L * h);
        kColumns = columns(0, kv);
        vColumnsOfKv = columns(kv, 2L * kv);
    }

    private static NDIndex columns(long from, long to) {
        return new NDIndex().addAllDim().addSliceDim(from, to);
    }

    /** Row-major [rows, cols]: every row times {@code s}. */
    private static float[] scaleRows(float[] m, int cols, float s) {
        float[] out = m.clone();
        for (int i = 0; i < out.length; i++) {
            out[i] *= s;
        }
        return out;
    }

    /** Row-major [rows, cols]: column j times {@code s[j]}. */
    private static float[] scaleColumns(float[] m, int cols, float[] s) {
        float[] out = m.clone();
        for (int i = 0; i < out.length; i++) {
            out[i] *= s[i % cols];
        }
        return out;
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

    /** Identifies these weights (config and a hash of the embedding), so artifacts trained for them can check. */
    public String fingerprint() {
        return fingerprint;
    }

    static String fingerprint(LlamaWeights w) {
        try {
            java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
            md.update(w.config().toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * 4096);
            float[] e = w.tokenEmbedding();
            for (int i = 0; i < e.length; i += 4096) {
                b.clear();
                for (int j = i; j < Math.min(e.length, i + 4096); j++) {
                    b.putFloat(e[j]);
                }
                md.update(b.array(), 0, b.position());
            }
            return java.util.HexFormat.of().formatHex(md.digest()).substring(0, 16);
        } catch (java.security.NoSuchAlgorithmException ex) {
            throw new IllegalStateException(ex);
        }
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
        return block(layer, x, batch, cache, null);
    }

    /**
     * The same, handing the block's attention probabilities to {@code attention} (for routers that use
     * attention-score importance); null for none. Their layout differs: {@code [kvHeads, rows, group, keys]} in a
     * prefill, {@code [rows, kvHeads, group, keys]} in a decode step.
     */
    public NDArray block(int layer, NDArray x, TokenBatch batch, KvCache cache, Consumer<NDArray> attention) {
        Layer w = layers[layer];
        NDArray h = x.add(attention(layer, w, rmsNorm(x), batch, cache, attention));
        return h.add(mlp(w, rmsNorm(h)));
    }

    /**
     * Keys and values of block {@code layer} for the batch's rows computed from hidden states {@code x} without
     * running the block, written to the cache: an early-exited token's entries for the blocks it skipped (CALM's
     * state propagation), so that later tokens still find keys and values there.
     */
    public void writeKeysValues(int layer, NDArray x, TokenBatch batch, KvCache cache) {
        LlamaConfig c = config;
        int n = batch.size();
        int kvH = c.nKvHeads();
        int hd = c.headSize();
        Layer w = layers[layer];
        NDArray kv = rmsNorm(x).matMul(w.wkv());
        if (w.bkv() != null) {
            kv = kv.add(w.bkv());
        }
        NDArray k = kv.get(kColumns).reshape(n, kvH, hd / 2, 2);
        NDArray rotated = k.mul(batch.ropeCos()).add(k.flip(3).mul(batch.ropeSin())).reshape(n, kvH, hd);
        cache.write(layer, batch, rotated, kv.get(vColumnsOfKv).reshape(n, kvH, hd));
    }

    /** Final norm and LM head: {@code [N, dim] -> [N, vocab]}. */
    public NDArray logits(NDArray x) {
        return rmsNorm(x).matMul(classifierT);
    }

    /** x / sqrt(mean(x^2) + eps), per row; the weight is folded into the next matmul. */
    private NDArray rmsNorm(NDArray x) {
        NDArray ms = x.square().mean(new int[] {-1}, true);
        return x.div(ms.add(config.normEps()).sqrt());
    }

    private NDArray attention(int layer, Layer w, NDArray xn, TokenBatch batch, KvCache cache,
            Consumer<NDArray> observer) {
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
        NDArray qk = qkv.get(qkColumns).reshape(n, c.nHeads() + kvH, hd / 2, 2);
        NDArray rotated = qk.mul(batch.ropeCos()).add(qk.flip(3).mul(batch.ropeSin()))
                .reshape(n, c.nHeads() + kvH, hd);
        NDArray q = rotated.get(queryHeads);
        NDArray k = rotated.get(keyHeads);
        NDArray v = qkv.get(vColumns).reshape(n, kvH, hd);
        cache.write(layer, batch, k, v);
        NDArray keys = cache.keys(layer, batch);
        NDArray values = cache.values(layer, batch);
        NDArray out;
        int t = batch.context();
        NDArray written = cache.writtenMask(layer, batch);
        NDArray mask = written == null ? batch.mask() : batch.mask().add(written);
        if (batch.isPrefill()) {
            // q [N, kvH*g, hd] -> [kvH, N*g, hd]; keys [kvH, T, hd]; one matmul per kv head group.
            NDArray qh = q.reshape(n, kvH, g, hd).transpose(1, 0, 2, 3).reshape(kvH, (long) n * g, hd);
            NDArray scores = qh.matMul(keys.transpose(0, 2, 1)).reshape(kvH, n, g, t);
            NDArray probs4 = maskedSoftmax(scores, mask);
            if (observer != null) {
                observer.accept(probs4);
            }
            NDArray probs = probs4.reshape(kvH, (long) n * g, t);
            out = probs.matMul(values).reshape(kvH, n, g, hd).transpose(1, 0, 2, 3).reshape(n, d);
        } else {
            // q [N, kvH, g, hd] against each row's own history [N, kvH, T, hd].
            NDArray scores = q.reshape(n, kvH, g, hd).matMul(keys.transpose(0, 1, 3, 2));
            NDArray probs = maskedSoftmax(scores, mask);
            if (observer != null) {
                observer.accept(probs);
            }
            out = probs.matMul(values).reshape(n, d);
        }
        return out.matMul(w.wo());
    }

    /**
     * softmax(scores + mask) over the last axis. (Subnormal probabilities slow this 8x in a synthetic test
     * with very peaked scores; a guard against them measured slower on real text, so there is none.)
     */
    private static NDArray maskedSoftmax(NDArray scores, NDArray mask) {
        return scores.add(mask).softmax(-1);
    }

    private NDArray mlp(Layer w, NDArray xn) {
        NDArray gateUp = xn.matMul(w.w13());
        NDArray gate = gateUp.get(gateColumns);
        NDArray up = gateUp.get(upColumns);
        // silu(g) = g * sigmoid(g); DJL's Activation.swish is an order of magnitude slower here
        return gate.mul(Activation.sigmoid(gate)).mul(up).matMul(w.w2());
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
