package dev.skipflow.job.options;

import dev.skipflow.model.ModelSource;
import dev.skipflow.model.io.CompressedCheckpoint;
import dev.skipflow.model.weights.Fingerprint;
import dev.skipflow.model.weights.ModelWeights;
import java.nio.file.Path;
import java.util.function.Consumer;
import picocli.CommandLine.Option;

/** {@code --original [PATH]}: the model a compressed one is measured against, side by side in the same run. */
public final class OriginalOptions {

    @Option(names = "--original", arity = "0..1", fallbackValue = "", paramLabel = "PATH",
            description = "Also run the original model side by side with --model, in the same run: PATH (a model "
                    + "file or folder, or synthetic:NAME), or without PATH the original that --model's compressed "
                    + "checkpoint manifest names. With --protocol serving, the original is the dense every row is "
                    + "judged against (agreement, FLOPs, speed-up), the compressed model's dense path a row of its own.")
    String original;

    public boolean enabled() {
        return original != null;
    }

    /** Where the original comes from: the given path, or the one {@code model}'s manifest records. */
    public ModelSource source(ModelOptions model) {
        ModelSource m = model.source();
        String where = original;
        if (where == null || where.isEmpty()) {
            Path dir = m.synthetic() == null ? m.modelPath() : null;
            if (dir == null || !CompressedCheckpoint.isCompressed(dir)) {
                throw new IllegalArgumentException("--original without a PATH needs --model to be a compressed checkpoint "
                        + "folder (its manifest names the original); give --original PATH");
            }
            where = CompressedCheckpoint.readProvenance(dir).originalSource();
        }
        if (where.startsWith("synthetic:")) {
            return new ModelSource(null, null, where.substring("synthetic:".length()), m.device());
        }
        return new ModelSource(Path.of(where).toAbsolutePath().toString(), null, null, m.device());
    }

    /** The original's weights; warns when a compressed --model's manifest names another fingerprint. */
    public ModelWeights weights(ModelOptions model, Consumer<String> warn) {
        ModelWeights w = source(model).loadWeights();
        ModelSource m = model.source();
        if (m.synthetic() == null && CompressedCheckpoint.isCompressed(m.modelPath())) {
            String expected = CompressedCheckpoint.readProvenance(m.modelPath()).originalFingerprint();
            String got = Fingerprint.of(w);
            if (!expected.equals(got)) {
                warn.accept("the original given (fingerprint " + got + ") is not the model " + m.modelPath()
                        + " was compressed from (fingerprint " + expected + ")");
            }
        }
        return w;
    }
}
