package dev.skipflow.job.options;

import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.exit.ExitArtifact;
import dev.skipflow.model.exit.ExitClassifier;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/** Early exit for eval, bench and the job: a trained exit-classifier artifact, and overrides for sweeps. */
public final class ExitOptions {

    @Option(names = "--exit", paramLabel = "PATH",
            description = "A trained exit-classifier artifact (from train-exit): adaptive tokens stop at the first probed "
                    + "block whose features it accepts.")
    public Path exit;

    @Option(names = "--exit-thresholds", split = ",", paramLabel = "T",
            description = "eval/bench: sweep these decision thresholds instead of the artifact's (higher = fewer exits).")
    double[] thresholds;

    @Option(names = "--exit-probe", paramLabel = "FIRST[:EVERY]",
            description = "Probe after block FIRST, then every EVERY blocks (0-based), instead of the artifact's policy.")
    String probe;

    @Option(names = "--exit-kv", paramLabel = "propagate|mask",
            description = "How an exited token fills the blocks it skips: keys/values projected from its exit state "
                    + "(propagate, CALM; default: the artifact's) or none, masked for later tokens (mask).")
    String kv;

    public boolean enabled() {
        return exit != null;
    }

    /** The artifact's classifier with the probe override, refused for another model; null without --exit. */
    public ExitClassifier classifier(LlamaModel model) {
        if (exit == null) {
            if (thresholds != null || probe != null || kv != null) {
                throw new IllegalArgumentException("--exit-thresholds, --exit-probe and --exit-kv need --exit PATH");
            }
            return null;
        }
        ExitClassifier c = ExitArtifact.load(exit).classifierFor(model, exit);
        if (probe != null) {
            String[] parts = probe.split(":");
            try {
                c = c.withPolicy(Integer.parseInt(parts[0].trim()), parts.length > 1 ? Integer.parseInt(parts[1].trim()) : 1);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--exit-probe must be FIRST or FIRST:EVERY (block numbers), got " + probe);
            }
        }
        if (kv != null) {
            if (!kv.equals("propagate") && !kv.equals("mask")) {
                throw new IllegalArgumentException("--exit-kv must be propagate or mask, got " + kv);
            }
            c = c.withPropagation(kv.equals("propagate"));
        }
        return c;
    }

    /** One classifier per swept threshold (the artifact's own when none are given); empty without --exit. */
    public List<ExitClassifier> sweep(LlamaModel model) {
        ExitClassifier c = classifier(model);
        List<ExitClassifier> out = new ArrayList<>();
        if (c == null) {
            return out;
        }
        if (thresholds == null) {
            out.add(c);
        } else {
            for (double t : thresholds) {
                out.add(c.withThreshold(t));
            }
        }
        return out;
    }
}
