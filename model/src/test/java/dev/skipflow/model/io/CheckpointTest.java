package dev.skipflow.model.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.skipflow.model.spec.LlamaConfig;
import dev.skipflow.model.weights.LlamaWeights;
import dev.skipflow.model.io.ModelFormatException;
import dev.skipflow.model.ScalarLlama;
import dev.skipflow.model.SyntheticModels;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.decoder.LlamaModel;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading llama2.c and Hugging Face checkpoints, and refusing broken ones with a useful message. */
class CheckpointTest {

    @TempDir
    Path dir;

    @Test
    void truncatedLlama2cFileIsRefusedWithSizes() throws IOException {
        byte[] full = Files.readAllBytes(TestModels.modelFile());
        Path cut = dir.resolve("cut.bin");
        Files.write(cut, Arrays.copyOf(full, full.length - 1000));
        var e = assertThrows(ModelFormatException.class, () -> ModelLoader.load(cut));
        assertTrue(e.getMessage().contains("header says " + full.length + " bytes"), e.getMessage());
        assertTrue(e.getMessage().contains("file has " + (full.length - 1000)), e.getMessage());
        assertTrue(e.getMessage().startsWith(cut.toString()), e.getMessage());

        Path tiny = dir.resolve("tiny.bin");
        Files.write(tiny, new byte[] {1, 2, 3});
        assertTrue(assertThrows(ModelFormatException.class, () -> ModelLoader.load(tiny)).getMessage()
                .contains("too short"));

        Path garbage = dir.resolve("garbage.bin");
        byte[] g = new byte[4096];
        Arrays.fill(g, (byte) 0x7f);
        Files.write(garbage, g);
        assertTrue(assertThrows(ModelFormatException.class, () -> ModelLoader.load(garbage)).getMessage()
                .contains("not a llama2.c model"));
        assertTrue(assertThrows(ModelFormatException.class, () -> ModelLoader.load(dir.resolve("none.bin")))
                .getMessage().contains("no such model"));
    }

    @Test
    void unsharedClassifierLlama2cFileLoadsTheSeparateHead() throws IOException {
        LlamaConfig c = LlamaConfig.llama2c(32, 48, 2, 4, 2, 40, 16, false);
        LlamaWeights w = SyntheticModels.weights(c, 11L, "test");
        Path file = dir.resolve("unshared.bin");
        writeLlama2c(w, file);
        LlamaWeights back = Llama2cCheckpoint.read(file);
        assertEquals(c, back.config());
        assertArrayEquals(w.classifier(), back.classifier());
        assertArrayEquals(w.w2()[1], back.w2()[1]);
        assertTrue(!Arrays.equals(back.classifier(), back.tokenEmbedding()));
        assertLogitsMatchScalar(back, w, 1e-4f);
    }

    @Test
    void safetensorsFolderRoundTripsInEveryFloatType() throws IOException {
        LlamaWeights w = TestModels.weights();
        for (String dtype : new String[] {"F32", "F16", "BF16"}) {
            Path folder = dir.resolve("hf-" + dtype);
            HfCheckpoint.write(w, folder, dtype);
            LlamaWeights back = HfCheckpoint.read(folder);
            assertEquals(w.config().dim(), back.config().dim());
            assertEquals(w.config().nKvHeads(), back.config().nKvHeads());
            if (dtype.equals("F32")) {
                assertArrayEquals(w.wq()[3], back.wq()[3], "q rows un-permuted exactly");
                assertArrayEquals(w.wk()[3], back.wk()[3]);
                assertLogitsMatchScalar(back, w, 1e-4f);
            } else {
                // the loaded (rounded) weights must run exactly like the scalar reference on the same weights
                assertLogitsMatchScalar(back, back, 1e-4f);
            }
        }
    }

    @Test
    void qwenStyleBiasesAndGroupedQueryAttentionLoadFromSafetensors() throws IOException {
        LlamaConfig c = new LlamaConfig(48, 96, 2, 6, 2, 64, 32, false, 1_000_000f, 1e-6f, true);
        LlamaWeights w = SyntheticModels.weights(c, 5L, "qwen-like");
        Path folder = dir.resolve("qwen");
        HfCheckpoint.write(w, folder, "F32");
        LlamaWeights back = HfCheckpoint.read(folder);
        assertTrue(back.config().qkvBias());
        assertEquals(1_000_000f, back.config().ropeTheta());
        assertArrayEquals(w.bq()[1], back.bq()[1]);
        assertLogitsMatchScalar(back, w, 1e-4f);
    }

    @Test
    void brokenSafetensorsAreRefusedWithTheTensorAndSizes() throws IOException {
        Path folder = dir.resolve("broken");
        HfCheckpoint.write(SyntheticModels.weights(LlamaConfig.llama2c(16, 32, 1, 2, 2, 20, 8, true), 3L, "t"),
                folder, "F32");
        Path st = folder.resolve("model.safetensors");
        byte[] full = Files.readAllBytes(st);
        Files.write(st, Arrays.copyOf(full, full.length - 64));
        var e = assertThrows(ModelFormatException.class, () -> ModelLoader.load(folder));
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
        assertTrue(e.getMessage().startsWith(st.toString()), e.getMessage());

        Files.delete(folder.resolve("config.json"));
        assertTrue(assertThrows(ModelFormatException.class, () -> ModelLoader.load(folder)).getMessage()
                .contains("no config.json"));
    }

    /** Loaded weights on the DJL path against the scalar reference on {@code reference}. */
    static void assertLogitsMatchScalar(LlamaWeights loaded, LlamaWeights reference, float tol) {
        int[] tokens = {1, 7, 3, 11, 5, 2, 9};
        try (LlamaModel model = new LlamaModel(loaded, Device.cpu())) {
            float[] all = TestModels.prefillLogits(model,
                    Arrays.copyOf(tokens, Math.min(tokens.length, loaded.config().seqLen())));
            ScalarLlama ref = new ScalarLlama(reference);
            int v = loaded.config().vocabSize();
            for (int p = 0; p < tokens.length; p++) {
                float[] expected = ref.forward(tokens[p] % v, p);
                float[] actual = Arrays.copyOfRange(all, p * v, (p + 1) * v);
                float scale = 0;
                for (float x : expected) {
                    scale = Math.max(scale, Math.abs(x));
                }
                assertArrayEquals(expected, actual, tol * Math.max(1f, scale), "position " + p);
            }
        }
    }

    static void writeLlama2c(LlamaWeights w, Path file) throws IOException {
        LlamaConfig c = w.config();
        try (OutputStream raw = Files.newOutputStream(file); DataOutputStream out = new DataOutputStream(raw)) {
            ByteBuffer h = ByteBuffer.allocate(28).order(ByteOrder.LITTLE_ENDIAN);
            h.putInt(c.dim()).putInt(c.hiddenDim()).putInt(c.nLayers()).putInt(c.nHeads()).putInt(c.nKvHeads())
                    .putInt(c.sharedClassifier() ? c.vocabSize() : -c.vocabSize()).putInt(c.seqLen());
            out.write(h.array());
            floats(out, w.tokenEmbedding());
            layers(out, w.rmsAtt());
            layers(out, w.wq());
            layers(out, w.wk());
            layers(out, w.wv());
            layers(out, w.wo());
            layers(out, w.rmsFfn());
            layers(out, w.w1());
            layers(out, w.w2());
            layers(out, w.w3());
            floats(out, w.rmsFinal());
            floats(out, new float[c.seqLen() * c.headSize()]); // legacy RoPE tables
            if (!c.sharedClassifier()) {
                floats(out, w.classifier());
            }
        }
    }

    private static void layers(DataOutputStream out, float[][] a) throws IOException {
        for (float[] x : a) {
            floats(out, x);
        }
    }

    private static void floats(DataOutputStream out, float[] a) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(a.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : a) {
            b.putFloat(f);
        }
        out.write(b.array());
    }
}
