package dev.skipflow.model.compression;

import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.ModelSource;
import dev.skipflow.model.io.CompressedCheckpoint;
import dev.skipflow.model.weights.Fingerprint;
import dev.skipflow.model.weights.ModelWeights;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * Writes a compression command's output folder whole or not at all: everything goes to a temporary folder beside
 * it, which is renamed into place at the end; an existing folder is only replaced with {@code force}, and only
 * when it is a compressed checkpoint or empty (so a mistyped {@code --out} cannot delete unrelated files).
 */
public final class CheckpointOutput {

    private CheckpointOutput() {}

    /** Refuses an output that exists (unless forced) or that force could not safely replace; call before any work. */
    public static void requireWritable(Path out, boolean force) {
        if (!Files.exists(out)) {
            Path parent = out.toAbsolutePath().getParent();
            if (parent != null && Files.exists(parent) && !Files.isDirectory(parent)) {
                throw new IllegalArgumentException("--out " + out + ": " + parent + " is not a folder");
            }
            return;
        }
        if (!force) {
            throw new IllegalArgumentException("--out " + out + " already exists; pass --force to replace it");
        }
        if (!Files.isDirectory(out)) {
            throw new IllegalArgumentException("--out " + out + " is a file, not a checkpoint folder; not replacing it");
        }
        if (!CompressedCheckpoint.isCompressed(out) && !isEmpty(out)) {
            throw new IllegalArgumentException("--out " + out + " is a folder that is not a compressed checkpoint (no "
                    + CompressedCheckpoint.MANIFEST + "); not replacing it, even with --force");
        }
    }

    /** The provenance of a model compressed from {@code input}: a new chain, or {@code previous}'s continued. */
    public static CompressedCheckpoint.Provenance provenance(ModelWeights input, CompressedCheckpoint.Provenance previous,
            String source, CompressedCheckpoint.Step step) {
        if (previous == null) {
            return new CompressedCheckpoint.Provenance(Fingerprint.of(input), source, List.of(step));
        }
        List<CompressedCheckpoint.Step> steps = new ArrayList<>(previous.steps());
        steps.add(step);
        return new CompressedCheckpoint.Provenance(previous.originalFingerprint(), previous.originalSource(), steps);
    }

    /**
     * A compression command's output: {@code compressed}, made from {@code source}'s weights {@code input} by
     * {@code step}, written to {@code out} with its provenance (continuing {@code source}'s when that is itself a
     * compressed checkpoint), the tokenizer the source uses copied beside it, then {@code extraFiles}.
     */
    public static void write(ModelSource source, ModelWeights input, ModelWeights compressed, CompressedCheckpoint.Step step,
            Path out, boolean force, List<Path> extraFiles) {
        Path modelPath = source.synthetic() != null ? null : source.modelPath();
        CompressedCheckpoint.Provenance previous = modelPath != null && CompressedCheckpoint.isCompressed(modelPath)
                ? CompressedCheckpoint.readProvenance(modelPath) : null;
        String originalSource = source.synthetic() != null ? "synthetic:" + source.synthetic()
                : modelPath.toAbsolutePath().normalize().toString();
        List<Path> files = new ArrayList<>();
        Path tokenizer = tokenizerFile(source, modelPath);
        if (tokenizer != null) {
            files.add(tokenizer);
        }
        files.addAll(extraFiles);
        write(compressed, provenance(input, previous, originalSource, step), out, force, files);
    }

    /** The tokenizer the model uses (none for a synthetic model without one). */
    private static Path tokenizerFile(ModelSource source, Path modelPath) {
        if (source.tokenizer() != null) {
            return Path.of(source.tokenizer());
        }
        if (modelPath == null) {
            return null;
        }
        Path t = ModelPaths.tokenizer(null, modelPath);
        return Files.isRegularFile(t) ? t : null;
    }

    /**
     * Writes the checkpoint and copies {@code extraFiles} (e.g. the tokenizer) beside it, into a temporary folder
     * renamed to {@code out} when complete; a previous {@code out} is replaced only then.
     */
    public static void write(ModelWeights w, CompressedCheckpoint.Provenance provenance, Path out, boolean force,
            List<Path> extraFiles) {
        requireWritable(out, force);
        Path target = out.toAbsolutePath().normalize();
        Path parent = target.getParent();
        String stamp = Long.toString(System.nanoTime(), 36);
        Path tmp = parent.resolve("." + target.getFileName() + ".tmp-" + stamp);
        try {
            Files.createDirectories(parent);
            CompressedCheckpoint.write(w, provenance, tmp);
            for (Path f : extraFiles) {
                Files.copy(f, tmp.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
            }
            moveIntoPlace(tmp, target);
        } catch (IOException e) {
            try {
                delete(tmp);
            } catch (IOException ignored) {
                // best effort: the temporary folder is named after the output
            }
            throw new UncheckedIOException("cannot write " + out + ": " + e.getMessage(), e);
        }
    }

    /**
     * Renames the finished folder {@code done} to {@code target}; a previous {@code target} is moved aside first and
     * deleted only once the new one is in place.
     */
    static void moveIntoPlace(Path done, Path target) throws IOException {
        Path old = target.resolveSibling("." + target.getFileName() + ".old-" + Long.toString(System.nanoTime(), 36));
        boolean replacing = Files.exists(target);
        if (replacing) {
            Files.move(target, old, StandardCopyOption.ATOMIC_MOVE);
        }
        Files.move(done, target, StandardCopyOption.ATOMIC_MOVE);
        if (replacing) {
            delete(old);
        }
    }

    private static boolean isEmpty(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.findAny().isEmpty();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Deletes {@code dir} and everything in it, if it exists. */
    static void delete(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
