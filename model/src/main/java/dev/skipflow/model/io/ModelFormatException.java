package dev.skipflow.model.io;

import java.nio.file.Path;

/** A model or tokenizer file that cannot be used, with a message that names the file and the problem. */
public class ModelFormatException extends RuntimeException {

    public ModelFormatException(Path file, String problem) {
        super(file + ": " + problem);
    }

    public ModelFormatException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
    }
}
