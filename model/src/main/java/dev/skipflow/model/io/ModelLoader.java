package dev.skipflow.model.io;

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
}
