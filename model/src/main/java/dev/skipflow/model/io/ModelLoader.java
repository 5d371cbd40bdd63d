package dev.skipflow.model.io;

import dev.skipflow.model.spec.ModelSpec;
import dev.skipflow.model.weights.ModelWeights;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Opens a model by path: a llama2.c {@code .bin} file, a Hugging Face folder, or a compressed checkpoint
 * folder ({@link CompressedCheckpoint}, recognized by its {@code skipflow.json}).
 */
public final class ModelLoader {

    private ModelLoader() {}

    public static ModelWeights load(Path path) {
        if (Files.isDirectory(path)) {
            return CompressedCheckpoint.isCompressed(path) ? CompressedCheckpoint.read(path).weights()
                    : ModelWeights.of(HfCheckpoint.read(path));
        }
        if (!Files.isRegularFile(path)) {
            throw new ModelFormatException(path, "no such model file or folder");
        }
        return ModelWeights.of(Llama2cCheckpoint.read(path));
    }

    /** Only the shape: the llama2.c header, config.json or the manifest, without reading weights. */
    public static ModelSpec spec(Path path) {
        if (Files.isDirectory(path)) {
            return CompressedCheckpoint.isCompressed(path) ? CompressedCheckpoint.readSpec(path)
                    : ModelSpec.uniform(HfCheckpoint.readConfig(path));
        }
        if (!Files.isRegularFile(path)) {
            throw new ModelFormatException(path, "no such model file or folder");
        }
        return ModelSpec.uniform(Llama2cCheckpoint.readConfig(path));
    }
}
