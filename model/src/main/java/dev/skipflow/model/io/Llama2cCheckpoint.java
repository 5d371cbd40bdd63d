package dev.skipflow.model.io;

import dev.skipflow.model.spec.LlamaConfig;
import dev.skipflow.model.weights.LlamaWeights;
import dev.skipflow.model.io.ModelFormatException;
import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Reads karpathy/llama2.c's legacy fp32 checkpoint ({@code run.c}'s format). */
public final class Llama2cCheckpoint {

    static final int HEADER_BYTES = 7 * Integer.BYTES;

    private Llama2cCheckpoint() {}

    /** The config from the header, after checking the file size it implies. */
    public static LlamaConfig readConfig(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return header(file, ch);
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read: " + e.getMessage(), e);
        }
    }

    private static LlamaConfig header(Path file, FileChannel ch) throws IOException {
        long size = ch.size();
        if (size < HEADER_BYTES) {
            throw new ModelFormatException(file, "file has " + size + " bytes, too short for the "
                    + HEADER_BYTES + "-byte llama2.c header");
        }
        java.nio.ByteBuffer map = java.nio.ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        ch.read(map, 0);
        map.flip();
        int dim = map.getInt();
        int hidden = map.getInt();
        int layers = map.getInt();
        int heads = map.getInt();
        int kvHeads = map.getInt();
        int vocab = map.getInt();
        int seqLen = map.getInt();
        boolean shared = vocab > 0;
        vocab = Math.abs(vocab);
        LlamaConfig config;
        try {
            config = LlamaConfig.llama2c(dim, hidden, layers, heads, kvHeads, vocab, seqLen, shared);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, "header is not a llama2.c model (dim=" + dim
                    + ", hidden_dim=" + hidden + ", n_layers=" + layers + ", n_heads=" + heads
                    + ", n_kv_heads=" + kvHeads + ", vocab_size=" + vocab + ", seq_len=" + seqLen
                    + "): " + e.getMessage());
        }
        long expected = expectedBytes(config);
        if (size != expected) {
            throw new ModelFormatException(file, "header says " + expected + " bytes (" + config
                    + "), file has " + size + (size < expected ? " (truncated?)" : " (trailing data)"));
        }
        return config;
    }

    public static LlamaWeights read(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            LlamaConfig config = header(file, ch);
            int dim = config.dim();
            int hidden = config.hiddenDim();
            int layers = config.nLayers();
            int vocab = config.vocabSize();
            int seqLen = config.seqLen();
            boolean shared = config.sharedClassifier();
            MappedByteBuffer map = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size());
            FloatBuffer f = map.position(HEADER_BYTES).slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
            int kv = config.kvDim();
            float[] emb = take(f, (long) vocab * dim);
            float[][] rmsAtt = take(f, layers, dim);
            float[][] wq = take(f, layers, (long) dim * dim);
            float[][] wk = take(f, layers, (long) kv * dim);
            float[][] wv = take(f, layers, (long) kv * dim);
            float[][] wo = take(f, layers, (long) dim * dim);
            float[][] rmsFfn = take(f, layers, dim);
            float[][] w1 = take(f, layers, (long) hidden * dim);
            float[][] w2 = take(f, layers, (long) dim * hidden);
            float[][] w3 = take(f, layers, (long) hidden * dim);
            float[] rmsFinal = take(f, dim);
            f.position(f.position() + seqLen * config.headSize()); // legacy freq_cis_real + freq_cis_imag
            float[] cls = shared ? emb : take(f, (long) vocab * dim);
            return new LlamaWeights(config, emb, rmsAtt, wq, wk, wv, wo, null, null, null, rmsFfn, w1, w2, w3,
                    rmsFinal, cls, file.toString());
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read: " + e.getMessage(), e);
        }
    }

    /** Exact file size a header implies, legacy RoPE tables included. */
    public static long expectedBytes(LlamaConfig c) {
        long d = c.dim();
        long kv = c.kvDim();
        long l = c.nLayers();
        long floats = c.vocabSize() * d // embedding
                + l * d // rms_att
                + l * d * d * 2 // wq, wo
                + l * kv * d * 2 // wk, wv
                + l * d // rms_ffn
                + l * c.hiddenDim() * d * 3 // w1, w2, w3
                + d // rms_final
                + (long) c.seqLen() * c.headSize() // two RoPE tables of seq_len * head_size/2
                + (c.sharedClassifier() ? 0 : c.vocabSize() * d);
        return HEADER_BYTES + floats * Float.BYTES;
    }

    private static float[] take(FloatBuffer f, long n) {
        float[] a = new float[Math.toIntExact(n)];
        f.get(a);
        return a;
    }

    private static float[][] take(FloatBuffer f, int layers, long each) {
        float[][] a = new float[layers][];
        for (int i = 0; i < layers; i++) {
            a[i] = take(f, each);
        }
        return a;
    }
}
