package dev.skipflow.model;

import ai.djl.Device;
import dev.skipflow.model.decoder.BatchEngine;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.decoder.Sequence;
import dev.skipflow.model.io.ModelLoader;
import dev.skipflow.model.tokenizer.Llama2cTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;

/** The real stories260K model and tokenizer from ../shared, for tests. */
public final class TestModels {

    private static LlamaWeights weights;
    private static Llama2cTokenizer tokenizer;
    private static LlamaModel model;

    private TestModels() {}

    public static Path shared() {
        Path p = Path.of(System.getProperty("skipflow.shared", "../../shared"));
        if (!Files.isDirectory(p.resolve("models"))) {
            throw new IllegalStateException("The shared model folder " + p.toAbsolutePath() + " is missing: tests need "
                    + "../shared beside the checkout (see ../shared/SOURCES.md) or -Dskipflow.shared=PATH");
        }
        return p;
    }

    public static Path modelFile() {
        return shared().resolve("models/stories260K/stories260K.bin");
    }

    public static synchronized LlamaWeights weights() {
        if (weights == null) {
            weights = ModelLoader.load(modelFile());
        }
        return weights;
    }

    public static synchronized Llama2cTokenizer tokenizer() {
        if (tokenizer == null) {
            tokenizer = Llama2cTokenizer.read(shared().resolve("models/stories260K/tok512.bin"),
                    weights().config().vocabSize());
        }
        return tokenizer;
    }

    /** Logits of every position of one prompt, through the prefill path. */
    public static float[] prefillLogits(LlamaModel model, int[] tokens) {
        try (dev.skipflow.model.decoder.KvCache cache = new dev.skipflow.model.decoder.KvCache(model, 1, tokens.length);
                ai.djl.ndarray.NDManager step = model.newStepManager()) {
            var batch = dev.skipflow.model.decoder.TokenBatch.prefill(model, step, 0, 0, tokens.length);
            ai.djl.ndarray.NDArray x = model.embed(batch, tokens);
            for (int l = 0; l < model.config().nLayers(); l++) {
                x = model.block(l, x, batch, cache);
            }
            return model.logits(x).toFloatArray();
        }
    }

    /** One DJL model shared by the tests of a JVM (it is immutable once built). */
    public static synchronized LlamaModel model() {
        if (model == null) {
            model = new LlamaModel(weights(), Device.cpu());
        }
        return model;
    }

    /** Submits {@code s} to {@code engine}, steps until it finishes, and returns its generated tokens. */
    public static int[] runAlone(BatchEngine engine, Sequence s) {
        engine.submit(s);
        while (!s.isFinished()) {
            engine.step();
        }
        return s.generated();
    }
}
