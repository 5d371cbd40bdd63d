package dev.skipflow.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import dev.skipflow.model.io.ModelLoader;
import dev.skipflow.model.spec.ModelSpec;
import dev.skipflow.model.weights.ModelWeights;
import dev.skipflow.model.tokenizer.Tokenizer;
import dev.skipflow.model.tokenizer.Tokenizers;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Where a model comes from, as a small serializable value that can travel to Flink task managers and be
 * opened there: a checkpoint path (or a synthetic shape) and a tokenizer path, each resolved per
 * {@link ModelPaths} when absent, and the device to run on.
 *
 * @param model llama2.c file, HF folder or compressed checkpoint folder; null for the default resolution
 * @param tokenizer tokenizer file; null for one beside the model or the default
 * @param synthetic a {@link SyntheticModels} shape name instead of a checkpoint; null for none
 * @param device "cpu", "gpu", or null for a GPU when present
 */
public record ModelSource(String model, String tokenizer, String synthetic, String device) implements Serializable {

    public static ModelSource defaults() {
        return new ModelSource(null, null, null, null);
    }

    public ModelWeights loadWeights() {
        return synthetic != null ? ModelWeights.of(SyntheticModels.weights(synthetic, 7L)) : ModelLoader.load(modelPath());
    }

    /** The model's shape without loading its weights. */
    public ModelSpec spec() {
        return synthetic != null ? ModelSpec.uniform(SyntheticModels.config(synthetic)) : ModelLoader.spec(modelPath());
    }

    public Path modelPath() {
        return ModelPaths.model(model == null ? null : Path.of(model));
    }

    public Tokenizer loadTokenizer(int vocabSize) {
        if (synthetic != null && tokenizer == null) {
            return Tokenizers.synthetic(vocabSize);
        }
        Path explicit = tokenizer == null ? null : Path.of(tokenizer);
        return Tokenizers.load(ModelPaths.tokenizer(explicit, synthetic != null ? Path.of(".") : modelPath()), vocabSize);
    }

    public String describe() {
        return synthetic != null ? "synthetic:" + synthetic : modelPath().toString();
    }

    public Device resolveDevice() {
        String d = device == null ? null : device.toLowerCase(Locale.ROOT);
        int gpus = Engine.getInstance().getGpuCount();
        if (d == null || d.isBlank()) {
            return gpus > 0 ? Device.gpu() : Device.cpu();
        }
        return switch (d) {
            case "cpu" -> Device.cpu();
            case "gpu", "cuda" -> {
                if (gpus == 0) {
                    throw new IllegalArgumentException("device gpu: DJL's PyTorch engine sees no GPU here; use cpu");
                }
                yield Device.gpu();
            }
            default -> throw new IllegalArgumentException("device must be cpu or gpu, got " + device);
        };
    }
}
