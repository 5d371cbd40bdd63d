package dev.skipflow.job.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.job.options.ExitOptions;
import dev.skipflow.job.options.ModelOptions;
import dev.skipflow.job.options.OriginalOptions;
import dev.skipflow.job.options.Protocol;
import dev.skipflow.job.options.RoutingOptions;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.eval.ExitOracle;
import dev.skipflow.model.eval.PerplexityEvaluator;
import dev.skipflow.model.eval.ServingEvaluator;
import dev.skipflow.model.eval.SkipOracle;
import dev.skipflow.model.eval.Variants;
import dev.skipflow.model.flops.Savings;
import dev.skipflow.model.weights.ModelWeights;
import dev.skipflow.model.routing.TokenRouter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Perplexity of a text file: each non-empty line is a document (BOS + encoding, truncated to "
                + "--max-len); NLL summed over every predicted position; perplexity = exp(NLL / predicted tokens).")
public final class EvalCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--text", required = true, paramLabel = "FILE", description = "Text file, one document per line.")
    Path text;

    @Option(names = "--max-len", defaultValue = "256", description = "Tokens per document, BOS included (default: ${DEFAULT-VALUE}).")
    int maxLen;

    @Option(names = "--max-docs", defaultValue = "0", description = "Keep the first N documents; 0 = all (default).")
    int maxDocs;

    @Option(names = "--json", description = "Print one JSON object instead of text.")
    boolean json;

    @Mixin
    RoutingOptions routing = new RoutingOptions();

    @Mixin
    ExitOptions exitOptions = new ExitOptions();

    @Mixin
    OriginalOptions original = new OriginalOptions();

    @Option(names = "--skip-oracle", description = "Instead of perplexity: skip one token-block at a time and report the "
            + "share whose skip leaves every position's top-1 unchanged, per block (slow: tokens x blocks passes per document).")
    boolean skipOracle;

    @Option(names = "--oracle-sparsity", paramLabel = "S",
            description = "With --skip-oracle: instead, run each document skipping the share S of its token-blocks whose "
                    + "skip alone costs least (measured on that document): what a router that saw each token-block's "
                    + "cost could reach.")
    Double oracleSparsity;

    @Option(names = "--oracle-by", defaultValue = "damage", paramLabel = "damage|flips",
            description = "With --oracle-sparsity: rank token-blocks by the NLL their skip alone adds (damage), or first by "
                    + "how many top-1 predictions it changes (flips), then damage (default: ${DEFAULT-VALUE}).")
    String oracleBy;

    @Option(names = "--decode", description = "Feed each document one token per decode step, as the job generates "
            + "(teacher-forced), instead of one prefill: measures a router's decode decisions. Slower.")
    boolean decode;

    @Option(names = "--protocol", defaultValue = "prefill", paramLabel = "prefill|serving",
            description = "prefill: every position of a document scored after one (routed) prefill, the papers' "
                    + "log-likelihood setting (default); serving: the first half of each document (at least 16 tokens) "
                    + "is the prompt, run as one prefill, the rest is fed token by token through the decode path with "
                    + "decode routing (per --route) and early exit, as the job serves it; scored on the continuation only, "
                    + "with greedy agreement on the first 32 generated tokens.")
    Protocol protocol;

    @Option(names = "--exit-oracle", description = "Instead of perplexity: what a perfect early-exit classifier could "
            + "save, probing (final norm + LM head, charged) from each block on; agreement is 100%% by construction.")
    boolean exitOracle;

    private int exitOracle(List<int[]> docs) throws Exception {
        ExitOracle.Result r;
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device())) {
            r = ExitOracle.measure(model, docs, i -> { });
        }
        if (json) {
            System.out.println(new ObjectMapper().writeValueAsString(r));
            return 0;
        }
        int layers = r.meanBlocksRun().length;
        for (int l = 0; l < layers; l++) {
            System.out.printf("top-1 already final after block %d for %.1f%% of %d tokens%n", l,
                    100 * r.settledShare()[l], r.tokens());
        }
        for (int k = 0; k < layers; k++) {
            System.out.printf("probing from block %d: %.2f of %d blocks run per token, %.1f%% of FLOPs saved net of probes%n",
                    k, r.meanBlocksRun()[k], layers, 100 * r.savedFraction()[k]);
        }
        return 0;
    }

    private int oracleRouted(List<int[]> docs) throws Exception {
        SkipOracle.Routed r;
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device());
                ProgressBar bar = Progress.bar("skip oracle", docs.size())) {
            r = oracleBy.equals("flips") ? SkipOracle.routeByFlips(model, docs, oracleSparsity, bar::stepTo)
                    : SkipOracle.routeByDamage(model, docs, oracleSparsity, bar::stepTo);
        }
        if (json) {
            System.out.println(new ObjectMapper().writeValueAsString(r));
        } else {
            System.out.printf("skip oracle by %s at %.0f%%: %.1f%% of token-blocks skipped, perplexity %.4f (dense %.4f), "
                    + "top-1 agreement with dense %.2f%% on %d documents%n", oracleBy, 100 * oracleSparsity,
                    100 * r.skippedFraction(), r.perplexity(), r.densePerplexity(), 100 * r.agreement(), docs.size());
        }
        return 0;
    }

    private int oracle(List<int[]> docs) throws Exception {
        if (oracleSparsity != null) {
            return oracleRouted(docs);
        }
        SkipOracle.Result r;
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device());
                ProgressBar bar = Progress.bar("skip oracle", docs.size())) {
            r = SkipOracle.measure(model, docs, bar::stepTo);
        }
        if (json) {
            ObjectMapper m = new ObjectMapper();
            ObjectNode o = m.createObjectNode();
            o.put("model", modelOptions.describeModel());
            o.put("text", text.toString());
            o.put("documents", docs.size());
            o.put("maxLen", maxLen);
            o.putPOJO("triedPerBlock", r.tried());
            o.putPOJO("freePerBlock", r.free());
            o.put("freeFraction", r.freeFraction());
            System.out.println(m.writeValueAsString(o));
        } else {
            for (int l = 0; l < r.tried().length; l++) {
                System.out.printf("block %d: %d of %d token-blocks (%.1f%%) can be skipped alone with every top-1 unchanged%n",
                        l, r.free()[l], r.tried()[l], 100.0 * r.free()[l] / r.tried()[l]);
            }
            System.out.printf("all blocks: %.1f%%%n", 100 * r.freeFraction());
        }
        return 0;
    }

    /** Dense, exit (per threshold), router, and router + exit, in one run, document by document. */
    private int sideBySide(List<int[]> docs) throws Exception {
        PerplexityEvaluator.Side side;
        int layers;
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device())) {
            layers = model.spec().nLayers();
            var variants = Variants.exitsThenRouter(routing.router(model, modelOptions.tokenizer()),
                    exitOptions.sweep(model));
            try (ProgressBar bar = Progress.bar("eval", docs.size())) {
                side = new PerplexityEvaluator(model).compareAll(docs, variants, bar::stepTo);
            }
        }
        PerplexityEvaluator.Result d = side.dense();
        ObjectMapper m = new ObjectMapper();
        ObjectNode o = header(m, d);
        o.put("perplexity", d.perplexity());
        o.put("denseFlops", d.flops().savings().denseFlops());
        o.put("seconds", d.seconds());
        var rows = o.putArray("variants");
        if (!json) {
            System.out.printf("%s on %s: %d documents, %d predicted tokens, dense perplexity %.4f (%.2f s)%n",
                    modelOptions.describeModel(), text, d.documents(), d.predictedTokens(), d.perplexity(), d.seconds());
            System.out.printf("%-70s %9s %10s %10s %12s %11s %8s %8s%n", "variant", "agreement", "perplexity",
                    "mean exit", "layers saved", "FLOPs saved", "seconds", "speedup");
        }
        for (PerplexityEvaluator.VariantResult v : side.variants()) {
            Savings s = v.result().flops().savings();
            boolean exits = v.variant().exit() != null;
            double layersSaved = s.layersSavedFraction(layers);
            ObjectNode r = rows.addObject();
            r.put("name", v.variant().name());
            if (exits) {
                r.put("threshold", v.variant().exit().threshold());
                r.put("probeFrom", v.variant().exit().minLayer());
                r.put("probeEvery", v.variant().exit().every());
            }
            r.put("router", v.variant().router() != null);
            r.put("agreement", v.agreement());
            r.put("perplexity", v.result().perplexity());
            r.put("meanExitLayer", s.meanExitLayer());
            r.put("earlyExitTokens", s.earlyExitTokens());
            r.put("tokenBlocksSkipped", s.tokenBlocksSkipped());
            r.put("tokenBlocksTotal", s.tokenBlocksTotal());
            r.put("layerComputationsSaved", layersSaved);
            r.put("executedFlops", s.executedFlops());
            r.put("savedFraction", s.savedFraction());
            r.put("seconds", v.result().seconds());
            r.put("speedup", v.medianSpeedup());
            if (!json) {
                System.out.printf("%-70s %8.2f%% %10.4f %10s %11.1f%% %10.1f%% %8.2f %7.2fx%n", v.variant().name(),
                        100 * v.agreement(), v.result().perplexity(), exits ? String.format("%.3f", s.meanExitLayer()) : "-",
                        100 * layersSaved, 100 * s.savedFraction(), v.result().seconds(), v.medianSpeedup());
            }
        }
        if (json) {
            System.out.println(m.writeValueAsString(o));
        } else {
            System.out.println("(layers saved: token-blocks not run, by routing or exit, of all; FLOPs saved net of probes,"
                    + " k/v propagation and router; speedup: median over documents of dense seconds / variant seconds)");
        }
        return 0;
    }

    /** Dense and each configuration under the serving protocol, in one run, document by document. */
    private int serving(List<int[]> docs) throws Exception {
        ServingEvaluator.Side side;
        int layers;
        String against = original.enabled() ? original.source(modelOptions).describe() : null;
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device());
                LlamaModel reference = against == null ? null : new LlamaModel(
                        original.weights(modelOptions, w -> System.err.println("eval: warning: " + w)),
                        modelOptions.device())) {
            layers = model.spec().nLayers();
            var variants = new java.util.ArrayList<PerplexityEvaluator.Variant>();
            if (reference != null) {
                // the compressed model's own dense path: what compression alone keeps
                variants.add(new PerplexityEvaluator.Variant("this model, dense path (compression only)", null, null));
            }
            variants.addAll(Variants.exitsThenRouter(routing.router(model, modelOptions.tokenizer()),
                    exitOptions.sweep(model)));
            try (ProgressBar bar = Progress.bar("eval (serving)", docs.size())) {
                side = new ServingEvaluator(model, reference != null ? reference : model, routing.routeDecode())
                        .compare(docs, variants, bar::stepTo);
            }
        }
        PerplexityEvaluator.Result d = side.dense();
        ObjectMapper m = new ObjectMapper();
        ObjectNode o = header(m, d);
        o.put("protocol", "serving");
        o.put("route", routing.routeDecode() ? "all" : "prompt");
        if (against != null) {
            o.put("original", against);
        }
        o.put("perplexity", d.perplexity());
        o.put("seconds", d.seconds());
        var rows = o.putArray("variants");
        if (!json) {
            System.out.printf("%s on %s, serving protocol (prompt = first half, continuation decoded; route %s): %d "
                            + "documents, %d scored continuation tokens, dense perplexity %.4f (%.2f s)%n",
                    modelOptions.describeModel(), text, routing.routeDecode() ? "all" : "prompt", d.documents(),
                    d.predictedTokens(), d.perplexity(), d.seconds());
            if (against != null) {
                System.out.println("dense = the original " + against + "; every row runs this model, FLOPs and agreement "
                        + "against the original");
            }
            System.out.printf("%-70s %9s %9s %10s %12s %11s %8s%n", "variant", "agreement", "greedy@32", "perplexity",
                    "layers saved", "FLOPs saved", "speedup");
        }
        for (ServingEvaluator.ServingResult v : side.variants()) {
            Savings s = v.result().flops().savings();
            ObjectNode r = rows.addObject();
            r.put("name", v.variant().name());
            r.put("agreement", v.agreement());
            r.put("greedyAgreement", v.greedyAgreement());
            r.put("perplexity", v.result().perplexity());
            r.put("earlyExitTokens", s.earlyExitTokens());
            r.put("tokenBlocksSkipped", s.tokenBlocksSkipped());
            r.put("tokenBlocksTotal", s.tokenBlocksTotal());
            r.put("layerComputationsSaved", s.layersSavedFraction(layers));
            r.put("savedFraction", s.savedFraction());
            ObjectNode by = r.putObject("byMethod");
            by.put("compression", s.byMethod().compression());
            by.put("routing", s.byMethod().routing());
            by.put("exit", s.byMethod().exit());
            r.put("speedup", v.medianSpeedup());
            if (!json) {
                System.out.printf("%-70s %8.2f%% %8.2f%% %10.4f %11.1f%% %10.1f%% %7.2fx%n", v.variant().name(),
                        100 * v.agreement(), 100 * v.greedyAgreement(), v.result().perplexity(),
                        100 * s.layersSavedFraction(layers), 100 * s.savedFraction(), v.medianSpeedup());
            }
        }
        if (json) {
            System.out.println(m.writeValueAsString(o));
        } else {
            System.out.println("(agreement: top-1 equal to dense on the continuation; greedy@32: share of the first 32 "
                    + "greedy tokens from the prompt equal to dense's; FLOPs saved over prompt and continuation)");
        }
        return 0;
    }

    /** This model and its original side by side, document by document: quality, size, FLOPs and time. */
    private int againstOriginal(List<int[]> docs) throws Exception {
        PerplexityEvaluator.ModelComparison c;
        ModelWeights originalWeights = original.weights(modelOptions, w -> System.err.println("eval: warning: " + w));
        String originalName = original.source(modelOptions).describe();
        long params = modelOptions.weights().parameterCount();
        long originalParams = originalWeights.parameterCount();
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device());
                LlamaModel reference = new LlamaModel(originalWeights, modelOptions.device());
                ProgressBar bar = Progress.bar("eval vs original", docs.size())) {
            c = new PerplexityEvaluator(model).againstOriginal(reference, docs, bar::stepTo);
        }
        PerplexityEvaluator.Result o = c.original();
        PerplexityEvaluator.Result r = c.result();
        Savings os = o.flops().savings();
        Savings rs = r.flops().savings();
        if (json) {
            ObjectMapper m = new ObjectMapper();
            ObjectNode out = header(m, r);
            out.put("perplexity", r.perplexity());
            out.put("nll", r.nll());
            out.put("parameters", params);
            out.put("denseFlops", rs.denseFlops());
            out.put("executedFlops", rs.executedFlops());
            out.put("savedFraction", rs.savedFraction());
            out.put("seconds", r.seconds());
            out.put("agreement", c.agreement());
            out.put("speedup", c.medianSpeedup());
            ObjectNode on = out.putObject("original");
            on.put("model", originalName);
            on.put("perplexity", o.perplexity());
            on.put("nll", o.nll());
            on.put("parameters", originalParams);
            on.put("executedFlops", os.executedFlops());
            on.put("seconds", o.seconds());
            System.out.println(m.writeValueAsString(out));
        } else {
            System.out.printf("%s on %s: %d documents, %d predicted tokens, side by side with its original%n",
                    modelOptions.describeModel(), text, r.documents(), r.predictedTokens());
            System.out.printf("%-10s %10s %12s %12s %14s %9s%n", "", "perplexity", "agreement", "parameters",
                    "GFLOPs run", "seconds");
            System.out.printf("%-10s %10.4f %12s %,12d %14.3f %9.2f   %s%n", "original", o.perplexity(), "-",
                    originalParams, os.executedFlops() / 1e9, o.seconds(), originalName);
            System.out.printf("%-10s %10.4f %11.2f%% %,12d %14.3f %9.2f   %s%n", "this", r.perplexity(),
                    100 * c.agreement(), params, rs.executedFlops() / 1e9, r.seconds(), modelOptions.describeModel());
            System.out.printf("parameters %.1f%% fewer, FLOPs %.1f%% saved (against the original dense model), "
                            + "%.2fx faster (median over documents of original seconds / this model's)%n",
                    100.0 * (originalParams - params) / originalParams, 100 * rs.savedFraction(), c.medianSpeedup());
        }
        return 0;
    }

    /** What every JSON answer starts with: the model, the text, and how much of it the dense pass scored. */
    private ObjectNode header(ObjectMapper m, PerplexityEvaluator.Result dense) {
        ObjectNode o = m.createObjectNode();
        o.put("model", modelOptions.describeModel());
        o.put("text", text.toString());
        o.put("maxLen", maxLen);
        o.put("documents", dense.documents());
        o.put("predictedTokens", dense.predictedTokens());
        return o;
    }

    @Override
    public Integer call() throws Exception {
        List<int[]> docs = Documents.read(text, modelOptions.tokenizer(), maxLen, maxDocs);
        if (docs.isEmpty()) {
            throw new IllegalArgumentException(text + " has no non-empty lines to evaluate");
        }
        if (decode && (skipOracle || exitOracle || exitOptions.enabled())) {
            throw new IllegalArgumentException("--decode measures a router (or dense) alone; drop --skip-oracle, "
                    + "--exit-oracle and --exit");
        }
        if (!oracleBy.equals("damage") && !oracleBy.equals("flips")) {
            throw new IllegalArgumentException("--oracle-by must be damage or flips, got " + oracleBy);
        }
        if (oracleSparsity != null && (!skipOracle || !(oracleSparsity > 0 && oracleSparsity < 1))) {
            throw new IllegalArgumentException("--oracle-sparsity goes with --skip-oracle and must be in (0, 1), got "
                    + oracleSparsity);
        }
        if (protocol == Protocol.serving && (decode || skipOracle || exitOracle)) {
            throw new IllegalArgumentException("--protocol serving already decodes the continuation; drop --decode, "
                    + "--skip-oracle and --exit-oracle");
        }
        if (protocol == Protocol.serving) {
            return serving(docs);
        }
        if (original.enabled()) {
            if (routing.enabled() || exitOptions.enabled() || decode || skipOracle || exitOracle) {
                throw new IllegalArgumentException("--original with a router or an exit needs --protocol serving (the "
                        + "prefill protocol compares the two models' dense passes); drop --router/--baseline, --exit, "
                        + "--decode and the oracles, or add --protocol serving");
            }
            return againstOriginal(docs);
        }
        if (skipOracle) {
            return oracle(docs);
        }
        if (exitOracle) {
            return exitOracle(docs);
        }
        if (exitOptions.enabled()) {
            return sideBySide(docs);
        }
        PerplexityEvaluator.Comparison c;
        String routerName = null;
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device())) {
            TokenRouter router = routing.router(model, modelOptions.tokenizer());
            routerName = router == null ? null : router.describe();
            try (ProgressBar bar = Progress.bar("eval", docs.size())) {
                PerplexityEvaluator evaluator = new PerplexityEvaluator(model);
                c = decode ? evaluator.compareDecode(docs, router, bar::stepTo) : evaluator.compare(docs, router, bar::stepTo);
            }
        }
        PerplexityEvaluator.Result r = c.dense();
        Savings s = r.flops().savings();
        if (json) {
            ObjectMapper m = new ObjectMapper();
            ObjectNode o = header(m, r);
            o.put("mode", decode ? "decode" : "prefill");
            o.put("nll", r.nll());
            o.put("perplexity", r.perplexity());
            o.put("denseFlops", s.denseFlops());
            o.put("executedFlops", s.executedFlops());
            o.put("savedFraction", s.savedFraction());
            o.put("seconds", r.seconds());
            o.put("tokensPerSecond", r.tokensPerSecond());
            if (c.routed() != null) {
                PerplexityEvaluator.Result a = c.routed();
                Savings as = a.flops().savings();
                ObjectNode ad = o.putObject("adaptive");
                ad.put("router", routerName);
                ad.put("perplexity", a.perplexity());
                ad.put("nll", a.nll());
                ad.put("agreement", c.agreement());
                ad.put("denseFlops", as.denseFlops());
                ad.put("executedFlops", as.executedFlops());
                ad.put("savedFraction", as.savedFraction());
                ad.put("tokenBlocksSkipped", as.tokenBlocksSkipped());
                ad.put("tokenBlocksTotal", as.tokenBlocksTotal());
                ad.put("seconds", a.seconds());
                ad.put("speedup", r.seconds() / a.seconds());
            }
            System.out.println(m.writeValueAsString(o));
        } else {
            System.out.printf("%s on %s: %d documents, %d predicted tokens%s, NLL %.4f, perplexity %.4f (%.1f s)%n",
                    modelOptions.describeModel(), text, r.documents(), r.predictedTokens(),
                    decode ? " (one decode step each)" : "", r.nll(), r.perplexity(), r.seconds());
            if (c.routed() != null) {
                PerplexityEvaluator.Result a = c.routed();
                Savings as = a.flops().savings();
                System.out.printf("%s: perplexity %.4f, top-1 agreement with dense %.2f%%, %d of %d token-blocks skipped, "
                                + "%.1f%% of FLOPs saved, %.2f s (dense %.2f s in the same run)%n", routerName, a.perplexity(),
                        100 * c.agreement(), as.tokenBlocksSkipped(), as.tokenBlocksTotal(), 100 * as.savedFraction(),
                        a.seconds(), r.seconds());
            }
        }
        return 0;
    }
}
