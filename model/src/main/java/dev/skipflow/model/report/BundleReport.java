package dev.skipflow.model.report;

import ai.djl.Device;
import dev.skipflow.model.ModelSource;
import dev.skipflow.model.ShippedArtifacts;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.eval.PerplexityEvaluator;
import dev.skipflow.model.eval.ServingEvaluator;
import dev.skipflow.model.exit.ExitArtifact;
import dev.skipflow.model.exit.ExitClassifier;
import dev.skipflow.model.flops.Savings;
import dev.skipflow.model.io.CompressedCheckpoint;
import dev.skipflow.model.routing.RouterArtifact;
import dev.skipflow.model.routing.RouterSpec;
import dev.skipflow.model.routing.TokenRouter;
import dev.skipflow.model.tokenizer.Tokenizer;
import dev.skipflow.model.training.RouterRecipe;
import dev.skipflow.model.weights.Fingerprint;
import dev.skipflow.model.weights.ModelWeights;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Serving bundles ({@code ./skipflow stack}) against the original they were made from, under the serving
 * protocol ({@link ServingEvaluator}): per text, each bundle's compressed dense path, then with its exit
 * classifier, its router, and both, every row's agreement, FLOPs and speed-up against the original's dense path
 * in the same run, FLOPs split by method.
 */
public final class BundleReport {

    /** One configuration of one bundle on one text. */
    public record Point(String text, String bundle, String steps, String configuration, double agreement,
            double greedyAgreement, double perplexity, double originalPerplexity, double savedFraction,
            double compression, double routing, double exit, double speedup) {}

    private BundleReport() {}

    public static List<Point> run(ModelSource original, List<Path> bundles, List<Path> texts, int maxDocs, int maxLen,
            RouterRecipe.Phases phases, Consumer<String> log) throws IOException {
        ModelWeights originalWeights = original.loadWeights();
        String fingerprint = Fingerprint.of(originalWeights);
        Tokenizer tokenizer = original.loadTokenizer(originalWeights.spec().vocabSize());
        Device device = original.resolveDevice();
        List<List<int[]>> perText = new ArrayList<>();
        for (Path t : texts) {
            perText.add(Documents.read(t, tokenizer, maxLen, maxDocs));
        }
        for (Path b : bundles) {
            if (!CompressedCheckpoint.isCompressed(b)) {
                throw new IllegalArgumentException("--bundle " + b + " is not a bundle or compressed checkpoint (no "
                        + CompressedCheckpoint.MANIFEST + "); build one with ./skipflow stack");
            }
            String from = CompressedCheckpoint.readProvenance(b).originalFingerprint();
            if (!from.equals(fingerprint)) {
                throw new IllegalArgumentException("--bundle " + b + " was made from another model (fingerprint " + from
                        + ") than --model " + original.describe() + " (" + fingerprint + ")");
            }
        }
        List<Point> points = new ArrayList<>();
        int total = bundles.size() * perText.stream().mapToInt(List::size).sum();
        try (LlamaModel reference = new LlamaModel(originalWeights, device);
                RouterRecipe.Phase phase = phases.open("bundles (serving)", total)) {
            int done = 0;
            for (Path b : bundles) {
                ModelSource source = new ModelSource(b.toString(), null, null, original.device());
                String steps = String.join(",", CompressedCheckpoint.readProvenance(b).steps().stream()
                        .map(CompressedCheckpoint.Step::method).toList());
                ShippedArtifacts.Found found = ShippedArtifacts.inBundle(b);
                try (LlamaModel model = new LlamaModel(source.loadWeights(), device)) {
                    boolean routeDecode = found.router() != null && RouterArtifact.load(found.router()).routesDecode();
                    TokenRouter router = found.router() == null ? null
                            : RouterSpec.learned(found.router(), null).withRouteDecode(routeDecode)
                                    .build(model, tokenizer);
                    ExitClassifier exit = found.exit() == null ? null
                            : ExitArtifact.load(found.exit()).classifierFor(model, found.exit());
                    List<PerplexityEvaluator.Variant> variants = new ArrayList<>();
                    variants.add(new PerplexityEvaluator.Variant("compression only", null, null));
                    if (exit != null) {
                        variants.add(new PerplexityEvaluator.Variant("+ exit", null, exit));
                    }
                    if (router != null) {
                        variants.add(new PerplexityEvaluator.Variant("+ router", router, null));
                    }
                    if (router != null && exit != null) {
                        variants.add(new PerplexityEvaluator.Variant("+ router + exit", router, exit));
                    }
                    ServingEvaluator eval = new ServingEvaluator(model, reference, routeDecode);
                    for (int t = 0; t < texts.size(); t++) {
                        List<int[]> docs = perText.get(t);
                        String name = texts.get(t).getFileName() + " (" + docs.size() + " docs, max " + maxLen
                                + " tokens)";
                        phase.status(b.getFileName() + " on " + texts.get(t).getFileName());
                        int offset = done;
                        ServingEvaluator.Side side = eval.compare(docs, variants, i -> phase.accept(offset + i));
                        done += docs.size();
                        for (ServingEvaluator.ServingResult r : side.variants()) {
                            Savings s = r.result().flops().savings();
                            points.add(new Point(name, b.getFileName().toString(), steps, r.variant().name(),
                                    r.agreement(), r.greedyAgreement(), r.result().perplexity(),
                                    side.dense().perplexity(), s.savedFraction(), s.byMethod().compression(),
                                    s.byMethod().routing(), s.byMethod().exit(), r.medianSpeedup()));
                        }
                    }
                }
                log.accept("bundle " + b + " (" + steps + "): " + (found.router() != null ? "router, " : "no router, ")
                        + (found.exit() != null ? "exit" : "no exit"));
            }
        }
        return points;
    }
}
