package dev.skipflow.model.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skipflow.model.io.ModelFormatException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

/**
 * A Hugging Face {@code tokenizer.json} through DJL's Rust tokenizers binding. Special tokens come from its
 * {@code added_tokens}: the begin-of-text token (if any) and every end-of-text token it declares, which are the
 * stop tokens; ids 1 and 2 are ordinary tokens here unless the file says otherwise.
 */
public final class HfTokenizer implements Tokenizer {

    private final HuggingFaceTokenizer tokenizer;
    private final int vocabSize;
    private final int bos; // -1 when the tokenizer has none
    private final Set<Integer> stops;

    /** End-of-text markers of the LLaMA, Llama 3, GPT-2/Qwen and ChatML families. */
    private static final Set<String> END_TOKENS = Set.of("</s>", "<|end_of_text|>", "<|endoftext|>", "<|eot_id|>",
            "<|im_end|>");

    private HfTokenizer(HuggingFaceTokenizer tokenizer, int vocabSize, int bos, Set<Integer> stops) {
        this.tokenizer = tokenizer;
        this.vocabSize = vocabSize;
        this.bos = bos;
        this.stops = Set.copyOf(stops);
    }

    public static HfTokenizer read(Path file, int vocabSize) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(file, "not a readable tokenizer.json: " + e.getMessage(), e);
        }
        int bos = -1;
        Set<Integer> stops = new java.util.TreeSet<>();
        for (JsonNode t : root.path("added_tokens")) {
            String content = t.path("content").asText();
            int id = t.path("id").asInt();
            if (content.equals("<s>") || content.equals("<|begin_of_text|>")) {
                bos = id;
            } else if (END_TOKENS.contains(content)) {
                stops.add(id);
            }
        }
        try {
            HuggingFaceTokenizer tk = HuggingFaceTokenizer.newInstance(file, Map.of("addSpecialTokens", "false"));
            return new HfTokenizer(tk, vocabSize, bos, stops);
        } catch (IOException | RuntimeException e) {
            throw new ModelFormatException(file, "cannot load tokenizer: " + e.getMessage(), e);
        }
    }

    @Override
    public int[] encode(String text, boolean withBos) {
        Encoding enc = tokenizer.encode(text, false, false);
        long[] ids = enc.getIds();
        int offset = withBos && bos >= 0 ? 1 : 0;
        int[] out = new int[ids.length + offset];
        if (offset == 1) {
            out[0] = bos;
        }
        for (int i = 0; i < ids.length; i++) {
            out[i + offset] = (int) ids[i];
        }
        return out;
    }

    @Override
    public byte[] pieceBytes(int previous, int token) {
        if (token == bos || stops.contains(token)) {
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

    /** The first end-of-text token, or -1 when the file declares none. */
    @Override
    public int eos() {
        return stops.isEmpty() ? -1 : stops.iterator().next();
    }

    @Override
    public Set<Integer> stopTokens() {
        return stops;
    }
}
