package dev.skipflow.model.routing;

import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Which router to build, as a small serializable value (for Flink task managers): a baseline name, its
 * token-block sparsity, and calibration text for ShortGPT's block influence; or a trained router, carried as
 * its artifact's JSON text so task managers need no access to the file.
 *
 * @param baseline static, random, importance, shortgpt, or learned
 * @param sparsity target token-block sparsity in [0, 1); for learned, negative keeps the artifact's schedule
 * @param calibration text file for shortgpt; null for ../shared/data/tinystories-train-sample.txt
 * @param artifact the router artifact's JSON text for learned, else null
 * @param artifactFile the file the artifact was read from, named when it is refused (e.g. for another model)
 * @param routeDecode whether the router also acts on decoding tokens (false: prompts only, FTP's own setting)
 * @param decodeSparsity mean share of decoding tokens' token-blocks skipped; NaN = the router's own. Learned: spread
 *     over blocks by inverse squared influence ({@link DecodeCalibration#shares}), decode thresholds calibrated anew,
 *     both on the calibration text. Random: the same share in every block
 */
public record RouterSpec(String baseline, double sparsity, String calibration, String artifact, String artifactFile,
        boolean routeDecode, double decodeSparsity) implements Serializable {

    public RouterSpec(String baseline, double sparsity, String calibration) {
        this(baseline, sparsity, calibration, null, null, true, Double.NaN);
    }

    /** The same router acting on prompts and decoding tokens ({@code true}) or on prompts only. */
    public RouterSpec withRouteDecode(boolean decode) {
        return new RouterSpec(baseline, sparsity, calibration, artifact, artifactFile, decode, decodeSparsity);
    }

    /** The same router skipping {@code d} of decoding tokens' token-blocks on average; see {@link #decodeSparsity}. */
    public RouterSpec withDecodeSparsity(double d, String calibrationText) {
        return new RouterSpec(baseline, sparsity, calibrationText != null ? calibrationText : calibration, artifact,
                artifactFile, routeDecode, d);
    }

    public RouterSpec {
        if (baseline == null || !java.util.List.of("static", "random", "shortgpt", "importance", "learned")
                .contains(baseline.toLowerCase(Locale.ROOT))) {
            throw new IllegalArgumentException("router baseline must be static, random, importance or shortgpt, got " + baseline);
        }
        if (baseline.equalsIgnoreCase("learned") && artifact == null) {
            throw new IllegalArgumentException("a learned router needs its artifact");
        }
        boolean ownSchedule = baseline.equalsIgnoreCase("learned") && sparsity < 0; // the artifact's schedule
        if (!ownSchedule && !(sparsity >= 0 && sparsity < 1)) {
            throw new IllegalArgumentException("router sparsity must be in [0, 1), got " + sparsity);
        }
        if (!Double.isNaN(decodeSparsity)) {
            if (!(decodeSparsity >= 0 && decodeSparsity < 1)) {
                throw new IllegalArgumentException("decode sparsity must be in [0, 1), got " + decodeSparsity);
            }
            if (!List.of("random", "learned").contains(baseline.toLowerCase(Locale.ROOT))) {
                throw new IllegalArgumentException("a decode sparsity applies to a trained router and the random baseline; "
                        + "the static and importance routers keep every decoding token (it is the most recent) and "
                        + "ShortGPT removes its blocks for every token");
            }
        }
    }

    /** A trained router from its artifact file (checked now); {@code sparsity} null keeps its schedule. */
    public static RouterSpec learned(Path artifactFile, Double sparsity) {
        RouterArtifact.load(artifactFile); // refuse a malformed file before anything starts
        try {
            return new RouterSpec("learned", sparsity == null ? -1 : sparsity, null, java.nio.file.Files.readString(artifactFile),
                    artifactFile.toString(), true, Double.NaN);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    public TokenRouter build(LlamaModel model, Tokenizer tokenizer) {
        int layers = model.spec().nLayers();
        if (baseline.equalsIgnoreCase("learned")) {
            Path source = Path.of(artifactFile != null ? artifactFile : "router artifact");
            RouterArtifact a = RouterArtifact.parse(artifact, source);
            LearnedRouter router = a.routerFor(model, source); // refuses another model
            if (Double.isNaN(decodeSparsity)) {
                return sparsity < 0 ? router : router.withSchedule(SparsitySchedule.uniform(sparsity, layers));
            }
            if (sparsity >= 0) {
                a = a.withSchedule(SparsitySchedule.uniform(sparsity, layers), "schedule overridden");
            }
            // the same calibration the trainer runs: held-out text, 32 documents of 256 tokens
            List<int[]> docs = Documents.read(calibrationText(), tokenizer, 256, 32);
            a = DecodeCalibration.withDecodeShare(model, a, docs, decodeSparsity);
            return new LearnedRouter(a.withDecodeThresholds(DecodeCalibration.thresholds(model, a, docs),
                    "decode thresholds calibrated on " + docs.size() + " documents"));
        }
        SparsitySchedule uniform = SparsitySchedule.uniform(sparsity, layers);
        return switch (baseline.toLowerCase(Locale.ROOT)) {
            case "static" -> new StaticRouter(uniform);
            case "random" -> Double.isNaN(decodeSparsity) ? new RandomRouter(uniform, 42L)
                    : new RandomRouter(uniform, uniform.scaledTo(decodeSparsity), 42L);
            case "importance" -> new ImportanceRouter(uniform);
            default -> {
                Path text = calibrationText();
                double[] influence = BlockInfluence.measure(model, Documents.read(text, tokenizer, 256, 64));
                yield BlockRemoval.lowestInfluence(influence, (int) Math.round(sparsity * layers));
            }
        };
    }

    private Path calibrationText() {
        return calibration != null ? Path.of(calibration) : ModelPaths.sharedData("tinystories-train-sample.txt");
    }
}
