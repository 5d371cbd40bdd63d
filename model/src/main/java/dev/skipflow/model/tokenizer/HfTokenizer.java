package dev.skipflow.model.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skipflow.model.ModelFormatException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;

/** A Hugging Face {@code tokenizer.json} through DJL's Rust tokenizers binding. */
public final class HfTokenizer implements Tokenizer {

    private final HuggingFaceTokenizer tokenizer;
    private final int vocabSize;
    private final int bos;
    private final int eos;

    private HfTokenizer(HuggingFaceTokenizer tokenizer, int vocabSize, int bos, int eos) {
        this.tokenizer = tokenizer;
        this.vocabSize = vocabSize;
        this.bos = bos;
        this.eos = eos;
    }

    public static HfTokenizer read(Path file, int vocabSize) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(file, "not a readable tokenizer.json: " + e.getMessage(), e);
        }
        int bos = BOS;
        int eos = EOS;
        for (JsonNode t : root.path("added_tokens")) {
            String content = t.path("content").asText();
            int id = t.path("id").asInt();
            switch (content) {
                case "<s>", "<|begin_of_text|>" -> bos = id;
                case "</s>", "<|end_of_text|>", "<|endoftext|>" -> eos = id;
                default -> { }
            }
        }
        try {
            HuggingFaceTokenizer tk = HuggingFaceTokenizer.newInstance(file, Map.of("addSpecialTokens", "false"));
            return new HfTokenizer(tk, vocabSize, bos, eos);
        } catch (IOException | RuntimeException e) {
            throw new ModelFormatException(file, "cannot load tokenizer: " + e.getMessage(), e);
        }
    }

    @Override
    public int[] encode(String text, boolean withBos) {
        Encoding enc = tokenizer.encode(text, false, false);
        long[] ids = enc.getIds();
        int offset = withBos ? 1 : 0;
        int[] out = new int[ids.length + offset];
        if (withBos) {
            out[0] = bos;
        }
        for (int i = 0; i < ids.length; i++) {
            out[i + offset] = (int) ids[i];
        }
        return out;
    }

    @Override
    public byte[] pieceBytes(int previous, int token) {
        if (token == bos || token == eos) {
            return new byte[0];
        }
        return tokenizer.decode(new long[] {token}, true).getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public String decode(int previous, int[] tokens) {
        long[] ids = new long[tokens.length];
        for (int i = 0; i < tokens.length; i++) {
            ids[i] = tokens[i];
        }
        return tokenizer.decode(ids, true); // whole-sequence decode keeps multi-token characters intact
    }

    @Override
    public int vocabSize() {
        return vocabSize;
    }

    @Override
    public int bos() {
        return bos;
    }

    @Override
    public int eos() {
        return eos;
    }
}
