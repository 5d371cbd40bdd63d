package dev.skipflow.job.cli;

import ai.djl.Device;
import ai.djl.engine.Engine;
import dev.skipflow.model.LlamaWeights;
import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.SyntheticModels;
import dev.skipflow.model.io.ModelLoader;
import dev.skipflow.model.tokenizer.Tokenizer;
import dev.skipflow.model.tokenizer.Tokenizers;
import java.nio.file.Path;
import java.util.Locale;
import picocli.CommandLine.Option;

/** Options every model-using command shares: which weights, which tokenizer, which device. */
public final class ModelOptions {

    @Option(names = "--model", paramLabel = "PATH",
            description = "llama2.c .bin file or Hugging Face folder (config.json + *.safetensors). "
                    + "Default: $SKIPFLOW_MODEL, then models/stories260K/, then ../shared/models/stories260K/.")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "PATH",
            description = "llama2.c tokenizer.bin or tokenizer.json. Default: $SKIPFLOW_TOKENIZER, then one beside the model.")
    Path tokenizer;

    @Option(names = "--synthetic", paramLabel = "NAME",
            description = "Use seeded random weights in the shape of NAME (stories15M, stories42M, stories110M) "
                    + "instead of a checkpoint; for speed work only, its output means nothing.")
    String synthetic;

    @Option(names = "--device", paramLabel = "cpu|gpu",
            description = "DJL device. Default: gpu when one is present, else cpu.")
    String device;

    private LlamaWeights weights;

    public LlamaWeights weights() {
        if (weights == null) {
            weights = synthetic != null ? SyntheticModels.weights(synthetic, 7L) : ModelLoader.load(modelPath());
        }
        return weights;
    }

    public Path modelPath() {
        return ModelPaths.model(model);
    }

    public String describeModel() {
        return synthetic != null ? "synthetic:" + synthetic : modelPath().toString();
    }

    public Tokenizer tokenizer() {
        int vocab = weights().config().vocabSize();
        if (synthetic != null && tokenizer == null) {
            return Tokenizers.synthetic(vocab);
        }
        return Tokenizers.load(ModelPaths.tokenizer(tokenizer, synthetic != null ? Path.of(".") : modelPath()), vocab);
    }

    public Device device() {
        String d = device == null ? null : device.toLowerCase(Locale.ROOT);
        int gpus = Engine.getInstance().getGpuCount();
        if (d == null) {
            return gpus > 0 ? Device.gpu() : Device.cpu();
        }
        return switch (d) {
            case "cpu" -> Device.cpu();
            case "gpu", "cuda" -> {
                if (gpus == 0) {
                    throw new IllegalArgumentException("--device gpu: DJL's PyTorch engine sees no GPU here; use --device cpu");
                }
                yield Device.gpu();
            }
            default -> throw new IllegalArgumentException("--device must be cpu or gpu, got " + device);
        };
    }
}
