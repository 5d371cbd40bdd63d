package dev.skipflow.model.tokenizer;

import dev.skipflow.model.io.ModelFormatException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Opens a tokenizer by path: {@code *.json} is Hugging Face, anything else llama2.c's binary format. */
public final class Tokenizers {

    private Tokenizers() {}

    public static Tokenizer load(Path path, int vocabSize) {
        Path file = Files.isDirectory(path) ? path.resolve("tokenizer.json") : path;
        if (!Files.isRegularFile(file)) {
            throw new ModelFormatException(file, "no such tokenizer file");
        }
        return file.getFileName().toString().endsWith(".json")
                ? HfTokenizer.read(file, vocabSize)
                : Llama2cTokenizer.read(file, vocabSize);
    }

    /**
     * A stand-in for synthetic models: byte pieces at 3..258 (so any text encodes) and placeholder pieces
     * for the rest of the vocabulary. Its output text means nothing, like the synthetic weights.
     */
    public static Llama2cTokenizer synthetic(int vocabSize) {
        String[] vocab = new String[vocabSize];
        float[] scores = new float[vocabSize];
        vocab[0] = "<unk>";
        vocab[1] = "\n<s>\n";
        vocab[2] = "\n</s>\n";
        for (int b = 0; b < 256; b++) {
            vocab[b + 3] = String.format("<0x%02X>", b);
        }
        vocab[3 + 256] = " ";
        for (int i = 260; i < vocabSize; i++) {
            vocab[i] = " t" + i;
            scores[i] = -i;
        }
        return new Llama2cTokenizer(vocab, scores, 16);
    }
}
