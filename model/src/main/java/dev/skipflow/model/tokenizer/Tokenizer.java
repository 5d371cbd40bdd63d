package dev.skipflow.model.tokenizer;

import java.util.Set;

/** Text to token ids and back. Implementations are immutable and thread-safe. */
public interface Tokenizer {

    /** llama2.c's ids: BOS (1) begins a text and also delimits generated stories; EOS (2) ends one. */
    int BOS = 1;
    int EOS = 2;

    /** Encodes text, with BOS first when {@code bos} is set. */
    int[] encode(String text, boolean bos);

    /** Raw bytes of one token as it appears after {@code previous} (llama2.c drops a leading space after BOS). */
    byte[] pieceBytes(int previous, int token);

    int vocabSize();

    default int bos() {
        return BOS;
    }

    default int eos() {
        return EOS;
    }

    /** Sampled tokens that end a generation (never part of the completion). */
    default Set<Integer> stopTokens() {
        return Set.of(eos());
    }

    /** Decodes a token sequence that followed {@code previous}; invalid UTF-8 becomes U+FFFD, never an exception. */
    default String decode(int previous, int[] tokens) {
        Utf8Stream s = new Utf8Stream();
        StringBuilder out = new StringBuilder();
        int prev = previous;
        for (int t : tokens) {
            out.append(s.push(pieceBytes(prev, t)));
            prev = t;
        }
        return out.append(s.flush()).toString();
    }
}
