package dev.skipflow.model.routing;

import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.eval.Documents;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Which router to build, as a small serializable value (for Flink task managers): a baseline name, its
 * token-block sparsity, and calibration text for ShortGPT's block influence.
 *
 * @param baseline static, random, importance or shortgpt
 * @param sparsity target token-block sparsity in [0, 1)
 * @param calibration text file for shortgpt; null for ../shared/data/tinystories-train-sample.txt
 */
public record RouterSpec(String baseline, double sparsity, String calibration) implements Serializable {

    public RouterSpec {
        if (baseline == null || !java.util.List.of("static", "random", "shortgpt", "importance").contains(baseline.toLowerCase(Locale.ROOT))) {
            throw new IllegalArgumentException("router baseline must be static, random, importance or shortgpt, got " + baseline);
        }
        if (!(sparsity >= 0 && sparsity < 1)) {
            throw new IllegalArgumentException("router sparsity must be in [0, 1), got " + sparsity);
        }
    }

    public TokenRouter build(LlamaModel model, Tokenizer tokenizer) {
        int layers = model.config().nLayers();
        SparsitySchedule uniform = SparsitySchedule.uniform(sparsity, layers);
        return switch (baseline.toLowerCase(Locale.ROOT)) {
            case "static" -> new StaticRouter(uniform);
            case "random" -> new RandomRouter(uniform, 42L);
            case "importance" -> new ImportanceRouter(uniform);
            default -> {
                Path text = calibration != null ? Path.of(calibration) : ModelPaths.sharedData("tinystories-train-sample.txt");
                double[] influence = BlockInfluence.measure(model, Documents.read(text, tokenizer, 256, 64));
                yield BlockRemoval.lowestInfluence(influence, (int) Math.round(sparsity * layers));
            }
        };
    }
}
