package dev.skipflow.model.io;

import dev.skipflow.model.LlamaConfig;
import dev.skipflow.model.LlamaWeights;
import dev.skipflow.model.ModelFormatException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Opens a model by path: a llama2.c {@code .bin} file or a Hugging Face folder. */
public final class ModelLoader {

    private ModelLoader() {}

    public static LlamaWeights load(Path path) {
        if (Files.isDirectory(path)) {
            return HfCheckpoint.read(path);
        }
        if (!Files.isRegularFile(path)) {
            throw new ModelFormatException(path, "no such model file or folder");
        }
        return Llama2cCheckpoint.read(path);
    }

    /** Only the shape: the llama2.c header or config.json, without reading weights. */
    public static LlamaConfig config(Path path) {
        if (Files.isDirectory(path)) {
            return HfCheckpoint.readConfig(path);
        }
        if (!Files.isRegularFile(path)) {
            throw new ModelFormatException(path, "no such model file or folder");
        }
        return Llama2cCheckpoint.readConfig(path);
    }
}
