package dev.skipflow.job.cli;

import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.routing.RouterSpec;
import dev.skipflow.model.routing.TokenRouter;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Token-routing baselines for eval, bench and the job (a trained router artifact comes with --router, later). */
public final class RoutingOptions {

    @Option(names = "--baseline", paramLabel = "static|random|importance|shortgpt",
            description = "Route tokens with a baseline at --sparsity: FTP's static router (first + most recent tokens, "
                    + "uniform schedule), random tokens, the most-attended tokens (FTP's importance factor alone, "
                    + "untrained), or ShortGPT whole-block removal (lowest 1 - cos influence).")
    String baseline;

    @Option(names = "--sparsity", defaultValue = "0.3", description = "Token-block sparsity for --baseline (default: ${DEFAULT-VALUE}).")
    double sparsity = 0.3;

    @Option(names = "--calibration", paramLabel = "FILE",
            description = "Text for ShortGPT's block influence (default: ../shared/data/tinystories-train-sample.txt).")
    Path calibration;

    public boolean enabled() {
        return baseline != null;
    }

    /** The serializable description, or null when no baseline was asked for. */
    public RouterSpec spec() {
        return baseline == null ? null
                : new RouterSpec(baseline, sparsity, calibration == null ? null : calibration.toAbsolutePath().toString());
    }

    /** The router, or null when no baseline was asked for. */
    public TokenRouter router(LlamaModel model, Tokenizer tokenizer) {
        RouterSpec spec = spec();
        return spec == null ? null : spec.build(model, tokenizer);
    }
}
