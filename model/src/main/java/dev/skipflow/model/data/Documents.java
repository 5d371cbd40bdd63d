package dev.skipflow.model.data;

import dev.skipflow.model.tokenizer.Tokenizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** DESIGN §6 documents: each non-empty line (CR/LF or LF endings) is BOS + its encoding, truncated. */
public final class Documents {

    private Documents() {}

    public static List<int[]> read(Path file, Tokenizer tokenizer, int maxLen, int maxDocs) {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("Text file " + file + " does not exist. The evaluation samples live in "
                    + "../shared/data (see ../shared/SOURCES.md); pass --text PATH.");
        }
        if (maxLen < 2) {
            throw new IllegalArgumentException("--max-len must be at least 2 (BOS plus one predicted token), got " + maxLen);
        }
        List<int[]> docs = new ArrayList<>();
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String line;
            while ((line = r.readLine()) != null && (maxDocs <= 0 || docs.size() < maxDocs)) {
                if (line.isEmpty()) {
                    continue;
                }
                int[] ids = tokenizer.encode(line, true);
                docs.add(ids.length > maxLen ? Arrays.copyOf(ids, maxLen) : ids);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        return docs;
    }
}
