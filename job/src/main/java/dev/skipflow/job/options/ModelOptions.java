package dev.skipflow.job.options;

import ai.djl.Device;
import dev.skipflow.model.weights.ModelWeights;
import dev.skipflow.model.ModelSource;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Options every model-using command shares: which weights, which tokenizer, which device. */
public final class ModelOptions {

    @Option(names = "--model", paramLabel = "PATH",
            description = "llama2.c .bin file, Hugging Face folder (config.json + *.safetensors) or compressed checkpoint "
                    + "folder (model.safetensors + skipflow.json). "
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

    private ModelWeights weights;

    /** The serializable description of the chosen model, with paths made absolute. */
    public ModelSource source() {
        return new ModelSource(model == null ? null : model.toAbsolutePath().toString(),
                tokenizer == null ? null : tokenizer.toAbsolutePath().toString(), synthetic, device);
    }

    public ModelWeights weights() {
        if (weights == null) {
            weights = source().loadWeights();
        }
        return weights;
    }

    public String describeModel() {
        return source().describe();
    }

    public Tokenizer tokenizer() {
        return source().loadTokenizer(weights().spec().vocabSize());
    }

    public Device device() {
        return source().resolveDevice();
    }
}
