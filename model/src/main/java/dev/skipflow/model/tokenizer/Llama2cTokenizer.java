package dev.skipflow.model.tokenizer;

import dev.skipflow.model.io.ModelFormatException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * llama2.c's BPE tokenizer ({@code tokenizer.bin}). Encoding gives exactly what {@code run.c} gives: a dummy
 * prefix space, one lookup per UTF-8 code point, byte fallback ({@code <0xNN>} = byte + 3), then repeated
 * merging of the adjacent pair with the highest score, leftmost first on ties. A heap with lazy
 * invalidation makes that O(n log n) instead of run.c's O(n^2) scan.
 */
public final class Llama2cTokenizer implements Tokenizer {

    private final String[] vocab;
    private final byte[][] pieces;
    private final float[] scores;
    private final Map<String, Integer> ids;
    private final int maxTokenLength;

    public Llama2cTokenizer(String[] vocab, float[] scores, int maxTokenLength) {
        this.vocab = vocab.clone();
        this.scores = scores.clone();
        this.maxTokenLength = maxTokenLength;
        this.pieces = new byte[vocab.length][];
        this.ids = new HashMap<>(vocab.length * 2);
        for (int i = 0; i < vocab.length; i++) {
            pieces[i] = pieceToBytes(vocab[i]);
            ids.putIfAbsent(vocab[i], i); // run.c's bsearch finds one of equal strings; first wins here
        }
    }

    public static Llama2cTokenizer read(Path file, int vocabSize) {
        byte[] all;
        try {
            all = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read tokenizer: " + e.getMessage(), e);
        }
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        if (b.remaining() < 4) {
            throw new ModelFormatException(file, "file has " + all.length + " bytes, too short for a llama2.c tokenizer");
        }
        int maxLen = b.getInt();
        String[] vocab = new String[vocabSize];
        float[] scores = new float[vocabSize];
        for (int i = 0; i < vocabSize; i++) {
            if (b.remaining() < 8) {
                throw new ModelFormatException(file, "truncated at token " + i + " of " + vocabSize
                        + " (the model's vocabulary size); file has " + all.length + " bytes");
            }
            scores[i] = b.getFloat();
            int len = b.getInt();
            if (len < 0 || len > b.remaining()) {
                throw new ModelFormatException(file, "token " + i + " claims " + len + " bytes, "
                        + b.remaining() + " remain");
            }
            byte[] s = new byte[len];
            b.get(s);
            vocab[i] = new String(s, StandardCharsets.UTF_8);
        }
        return new Llama2cTokenizer(vocab, scores, maxLen);
    }

    @Override
    public int vocabSize() {
        return vocab.length;
    }

    public String piece(int id) {
        return vocab[id];
    }

    @Override
    public byte[] pieceBytes(int previous, int token) {
        if (token < 0 || token >= pieces.length) {
            return new byte[0];
        }
        byte[] p = pieces[token];
        if (previous == BOS && p.length > 0 && p[0] == ' ') {
            return Arrays.copyOfRange(p, 1, p.length);
        }
        return p;
    }

    private static byte[] pieceToBytes(String piece) {
        if (piece.length() == 6 && piece.startsWith("<0x") && piece.endsWith(">")) {
            try {
                return new byte[] {(byte) Integer.parseInt(piece.substring(3, 5), 16)};
            } catch (NumberFormatException ignored) {
                // not a byte piece after all
            }
        }
        return piece.getBytes(StandardCharsets.UTF_8);
    }

    /** run.c stops at BOS, which delimits the stories it was trained on; EOS ends a text too. */
    @Override
    public java.util.Set<Integer> stopTokens() {
        return java.util.Set.of(BOS, EOS);
    }

    @Override
    public int[] encode(String text, boolean bos) {
        List<Integer> start = new ArrayList<>();
        if (bos) {
            start.add(BOS);
        }
        int n = 0;
        int[] tokens = new int[text.length() * 4 + 2];
        if (!text.isEmpty()) {
            tokens[n++] = lookup(" ");
        }
        // One lookup per code point; unknown ones fall back to their UTF-8 bytes.
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            String s = new String(Character.toChars(cp));
            i += Character.charCount(cp);
            Integer id = ids.get(s);
            if (id != null) {
                tokens[n++] = id;
            } else {
                for (byte by : s.getBytes(StandardCharsets.UTF_8)) {
                    tokens[n++] = (by & 0xff) + 3;
                }
            }
        }
        int[] merged = merge(Arrays.copyOf(tokens, n));
        int[] out = new int[start.size() + merged.length];
        for (int i = 0; i < start.size(); i++) {
            out[i] = start.get(i);
        }
        System.arraycopy(merged, 0, out, start.size(), merged.length);
        return out;
    }

    private int lookup(String s) {
        Integer id = ids.get(s);
        if (id == null) {
            throw new IllegalStateException("tokenizer has no piece for \"" + s + "\"");
        }
        return id;
    }

    /** A candidate merge of the pair starting at {@code left}, valid while both versions are unchanged. */
    private record Candidate(float score, int left, int right, int merged, int leftVersion, int rightVersion) {}

    private int[] merge(int[] tok) {
        int n = tok.length;
        int[] next = new int[n];
        int[] prev = new int[n];
        int[] version = new int[n];
        boolean[] alive = new boolean[n];
        for (int i = 0; i < n; i++) {
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
            alive[i] = true;
        }
        // Highest score first; among equal scores the leftmost pair, as run.c's strict '>' scan picks.
        PriorityQueue<Candidate> heap = new PriorityQueue<>((a, b) -> a.score != b.score
                ? Float.compare(b.score, a.score) : Integer.compare(a.left, b.left));
        for (int i = 0; i + 1 < n; i++) {
            offer(heap, tok, version, i, i + 1);
        }
        while (!heap.isEmpty()) {
            Candidate c = heap.poll();
            if (!alive[c.left] || !alive[c.right] || next[c.left] != c.right
                    || version[c.left] != c.leftVersion || version[c.right] != c.rightVersion) {
                continue; // stale
            }
            tok[c.left] = c.merged;
            version[c.left]++;
            alive[c.right] = false;
            next[c.left] = next[c.right];
            if (next[c.right] >= 0) {
                prev[next[c.right]] = c.left;
            }
            if (prev[c.left] >= 0) {
                offer(heap, tok, version, prev[c.left], c.left);
            }
            if (next[c.left] >= 0) {
                offer(heap, tok, version, c.left, next[c.left]);
            }
        }
        int[] out = new int[n];
        int m = 0;
        for (int i = n > 0 ? 0 : -1; i >= 0; i = next[i]) {
            out[m++] = tok[i];
        }
        return Arrays.copyOf(out, m);
    }

    private void offer(PriorityQueue<Candidate> heap, int[] tok, int[] version, int left, int right) {
        String pair = vocab[tok[left]] + vocab[tok[right]];
        if (pair.length() > maxTokenLength * 2 + 2) {
            return;
        }
        Integer id = ids.get(pair);
        if (id != null) {
            heap.add(new Candidate(scores[id], left, right, id, version[left], version[right]));
        }
    }
}
