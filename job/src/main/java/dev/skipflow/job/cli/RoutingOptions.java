package dev.skipflow.job.cli;

import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.eval.Documents;
import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.routing.BlockInfluence;
import dev.skipflow.model.routing.BlockRemoval;
import dev.skipflow.model.routing.RandomRouter;
import dev.skipflow.model.routing.SparsitySchedule;
import dev.skipflow.model.routing.StaticRouter;
import dev.skipflow.model.routing.TokenRouter;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.Locale;
import picocli.CommandLine.Option;

/** Token-routing baselines for eval and bench (a trained router artifact comes with --router, later). */
public final class RoutingOptions {

    @Option(names = "--baseline", paramLabel = "static|random|shortgpt",
            description = "Route tokens with a baseline at --sparsity: FTP's static router (first + most recent tokens, "
                    + "uniform schedule), random tokens, or ShortGPT whole-block removal (lowest 1 - cos influence).")
    String baseline;

    @Option(names = "--sparsity", defaultValue = "0.3", description = "Token-block sparsity for --baseline (default: ${DEFAULT-VALUE}).")
    double sparsity;

    @Option(names = "--calibration", paramLabel = "FILE",
            description = "Text for ShortGPT's block influence (default: ../shared/data/tinystories-train-sample.txt).")
    Path calibration;

    public boolean enabled() {
        return baseline != null;
    }

    /** The router, or null when no baseline was asked for. */
    public TokenRouter router(LlamaModel model, Tokenizer tokenizer) {
        if (baseline == null) {
            return null;
        }
        if (!(sparsity >= 0 && sparsity < 1)) {
            throw new IllegalArgumentException("--sparsity must be in [0, 1), got " + sparsity);
        }
        int layers = model.config().nLayers();
        SparsitySchedule uniform = SparsitySchedule.uniform(sparsity, layers);
        return switch (baseline.toLowerCase(Locale.ROOT)) {
            case "static" -> new StaticRouter(uniform);
            case "random" -> new RandomRouter(uniform, 42L);
            case "shortgpt" -> {
                Path text = calibration != null ? calibration : ModelPaths.sharedData("tinystories-train-sample.txt");
                var docs = Documents.read(text, tokenizer, 256, 64);
                double[] influence = BlockInfluence.measure(model, docs);
                yield BlockRemoval.lowestInfluence(influence, (int) Math.round(sparsity * layers));
            }
            default -> throw new IllegalArgumentException("--baseline must be static, random or shortgpt, got " + baseline);
        };
    }
}
