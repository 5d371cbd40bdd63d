package dev.skipflow.job.cli;

import dev.skipflow.model.ModelSource;
import dev.skipflow.job.options.Protocol;
import dev.skipflow.job.options.Route;
import dev.skipflow.job.report.ReportWriter;
import dev.skipflow.model.compression.lowrank.LowRank;
import dev.skipflow.model.io.CompressedCheckpoint;
import dev.skipflow.model.report.ReportRunner;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

@Command(name = "report", mixinStandardHelpOptions = true,
        description = {"Measures quality against compute in one sitting: the dense path and each adaptive configuration "
                + "(FTP's trained router over a sparsity sweep, AdaInfer's exit classifier over a threshold sweep, both "
                + "together, and the router baselines), on the valid sample and WikiText-2 (or --text files), plus "
                + "prefill wall-clock on a model shape where compute dominates.",
            "Trained routers and the exit classifier are read from --artifacts; missing ones are first trained there "
                    + "(train-router's and train-exit's defaults, a few minutes each) and reused by later runs.",
            "Writes results.json, RESULTS.md and PNG plots into --out; for a low-rank checkpoint (--model, or "
                    + "--lowrank) also ranks.png, the kept rank of every layer, and its table.",
            "--protocol serving scores the same rows as the job serves requests (prompt prefilled, continuation "
                    + "decoded); write it to its own --out beside the prefill report.",
            "With --bundle DIR (repeatable), serving bundles made from --model by ./skipflow stack are measured against "
                    + "it under the serving protocol: a table per text and a plot of agreement against FLOPs saved."})
public final class ReportCommand implements Callable<Integer> {

    @Option(names = "--model", paramLabel = "PATH",
            description = "A model to report on, repeatable: each gets its own folder in --out (named after the model) "
                    + "when more than one is given. Default: $SKIPFLOW_MODEL, then models/stories260K/, then "
                    + "../shared/models/stories260K/.")
    List<Path> models;

    @Option(names = "--tokenizer", paramLabel = "PATH",
            description = "Tokenizer for every --model. Default: $SKIPFLOW_TOKENIZER, then the one beside each model.")
    Path tokenizer;

    @Option(names = "--synthetic", paramLabel = "NAME",
            description = "Report on seeded random weights in the shape of NAME instead of a --model (speed work only).")
    String synthetic;

    @Option(names = "--device", paramLabel = "cpu|gpu", description = "DJL device. Default: gpu when one is present, else cpu.")
    String device;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Folder for results.json, RESULTS.md and plots.")
    Path out;

    @Option(names = "--text", paramLabel = "FILE", description = "Texts to evaluate (default: the valid sample and WikiText-2).")
    List<Path> texts;

    @Option(names = "--max-docs", defaultValue = "200", description = "Documents per text (default: ${DEFAULT-VALUE}).")
    int maxDocs;

    @Option(names = "--max-len", defaultValue = "256", description = "Tokens per document (default: ${DEFAULT-VALUE}).")
    int maxLen;

    @Option(names = "--sparsities", split = ",", defaultValue = "0.1,0.2,0.3,0.4", description = "Target sparsities (default: ${DEFAULT-VALUE}).")
    double[] sparsities;

    @Option(names = "--methods", split = ",", defaultValue = "static,random,importance,shortgpt,learned,exit,learned+exit",
            description = "Methods to measure (default: ${DEFAULT-VALUE}). learned = FTP's trained router at each "
                    + "sparsity; exit = the exit classifier at each --exit-thresholds value; learned+exit = each trained "
                    + "router with the exit classifier at its own threshold.")
    List<String> methods;

    @Option(names = "--artifacts", paramLabel = "DIR",
            description = "Folder of trained artifacts: router-<sparsity>.json and exit.json (-quick before .json with "
                    + "--quick). Missing ones are trained and written here (default: <out>/artifacts).")
    Path artifacts;

    @Option(names = "--calibration", paramLabel = "FILE",
            description = "Text to train missing artifacts on (default: ../shared/data/tinystories-train-sample.txt).")
    Path calibration;

    @Option(names = "--exit-thresholds", split = ",", paramLabel = "T", defaultValue = "0.9,0.7,0.5,0.3,0",
            description = "Exit thresholds to sweep besides the artifact's own; higher = fewer exits (default: ${DEFAULT-VALUE}).")
    double[] exitThresholds;

    @Option(names = "--speed-model", defaultValue = "stories110M",
            description = "Synthetic shape for prefill wall-clock; 'none' to skip (default: ${DEFAULT-VALUE}).")
    String speedModel;

    @Option(names = "--lowrank", paramLabel = "DIR",
            description = "A low-rank checkpoint (./skipflow lowrank) whose rank per layer the report plots "
                    + "(default: the --model folder, when it is one).")
    Path lowrank;

    @Option(names = "--quick", description = "A short run: sparsities 0.2 and 0.4, 20 documents per text, two exit "
            + "thresholds, 3 speed rounds, and short training for missing artifacts (kept apart as *-quick.json).")
    boolean quick;

    @Option(names = "--bundle", paramLabel = "DIR",
            description = "A serving bundle (./skipflow stack) made from --model, repeatable: each is also measured "
                    + "against --model under the serving protocol (compression alone, with its exit, its router, both), "
                    + "with a table and a plot of agreement against FLOPs saved over all bundles.")
    List<Path> bundles;

    @Option(names = "--protocol", defaultValue = "prefill", paramLabel = "prefill|serving",
            description = "How the router and exit rows are scored: prefill = every position of a document after one "
                    + "prefill (the papers' log-likelihood setting); serving = the prompt (first half) prefilled, the "
                    + "continuation decoded token by token and scored, with greedy@32 beside, as the job serves "
                    + "(default: ${DEFAULT-VALUE}).")
    Protocol protocol;

    @Option(names = "--route", defaultValue = "prompt", paramLabel = "prompt|all",
            description = "With --protocol serving: routers act on prompts only (FTP's setting) or on prompts and "
                    + "decoding tokens (default: ${DEFAULT-VALUE}).")
    Route route;

    @Option(names = "--bundles-only", description = "Measure only the --bundle rows (not the router and exit sweeps "
            + "on --model, nor the prefill wall-clock).")
    boolean bundlesOnly;

    @Override
    public Integer call() throws Exception {
        if (route == Route.all && protocol == Protocol.prefill) {
            throw new ParameterException(spec.commandLine(), "--route all needs --protocol serving: under the prefill "
                    + "protocol no token is decoded");
        }
        if (bundlesOnly && (bundles == null || bundles.isEmpty())) {
            throw new ParameterException(spec.commandLine(), "--bundles-only needs at least one --bundle DIR");
        }
        List<ModelSource> sources = new java.util.ArrayList<>();
        if (synthetic != null) {
            if (models != null && !models.isEmpty()) {
                throw new ParameterException(spec.commandLine(), "give --model or --synthetic, not both");
            }
            sources.add(new ModelSource(null, abs(tokenizer), synthetic, device));
        } else if (models == null || models.isEmpty()) {
            sources.add(new ModelSource(null, abs(tokenizer), null, device));
        } else {
            for (Path m : models) {
                sources.add(new ModelSource(m.toAbsolutePath().toString(), abs(tokenizer), null, device));
            }
        }
        if (lowrank != null && sources.size() > 1) {
            throw new ParameterException(spec.commandLine(), "--lowrank goes with one --model");
        }
        // each bundle with the model it was made from
        java.util.Map<ModelSource, List<Path>> bundlesOf = new java.util.LinkedHashMap<>();
        sources.forEach(src -> bundlesOf.put(src, new java.util.ArrayList<>()));
        if (bundles != null) {
            java.util.Map<String, ModelSource> byFingerprint = new java.util.HashMap<>();
            for (ModelSource src : sources) {
                byFingerprint.put(dev.skipflow.model.weights.Fingerprint.of(src.loadWeights()), src);
            }
            for (Path b : bundles) {
                if (!CompressedCheckpoint.isCompressed(b)) {
                    throw new ParameterException(spec.commandLine(), "--bundle " + b + ": not a bundle or compressed "
                            + "checkpoint (no " + CompressedCheckpoint.MANIFEST + "); build one with ./skipflow stack");
                }
                ModelSource from = byFingerprint.get(CompressedCheckpoint.readProvenance(b).originalFingerprint());
                if (from == null) {
                    throw new ParameterException(spec.commandLine(), "--bundle " + b + " was made from "
                            + CompressedCheckpoint.readProvenance(b).originalSource() + ", which is not among the "
                            + "--model(s) given");
                }
                bundlesOf.get(from).add(b);
            }
        }
        String command = "./skipflow " + String.join(" ", spec.commandLine().getParseResult().originalArgs());
        List<Path> written = new java.util.ArrayList<>();
        StringBuilder index = new StringBuilder("# Savings report\n\nGenerated by `" + command
                + "`. Do not edit by hand: rerun the command.\n\n");
        for (ModelSource src : sources) {
            Path dir = sources.size() == 1 ? out : out.resolve(ReportWriter.slug(src.describe().replaceAll(".*/", "")));
            Path arts = artifacts == null ? dir.resolve("artifacts")
                    : sources.size() == 1 ? artifacts : artifacts.resolve(dir.getFileName());
            written.addAll(reportOne(src, dir, arts, bundlesOf.get(src), command));
            index.append("- [").append(src.describe()).append("](").append(dir.getFileName()).append("/RESULTS.md)\n");
        }
        if (sources.size() > 1) {
            Path file = out.resolve("RESULTS.md");
            java.nio.file.Files.writeString(file, index.toString());
            written.add(file);
        }
        System.err.println("report: wrote " + written.size() + " files to " + out.toAbsolutePath());
        written.forEach(p -> System.out.println(p));
        return 0;
    }

    private static String abs(Path p) {
        return p == null ? null : p.toAbsolutePath().toString();
    }

    /** The report of one model (and the bundles made from it) into {@code dir}. */
    private List<Path> reportOne(ModelSource source, Path dir, Path arts, List<Path> modelBundles, String command)
            throws Exception {
        List<LowRank.Layer> ranks = null;
        Path ranksOf = lowrank;
        if (ranksOf == null && source.synthetic() == null) {
            Path m = source.modelPath();
            if (m != null && CompressedCheckpoint.isCompressed(m)) {
                ranksOf = m;
            }
        }
        if (ranksOf != null) {
            if (!CompressedCheckpoint.isCompressed(ranksOf)) {
                throw new ParameterException(spec.commandLine(), "--lowrank " + ranksOf + ": not a compressed checkpoint "
                        + "(no " + CompressedCheckpoint.MANIFEST + ")");
            }
            ranks = LowRank.layersOf(CompressedCheckpoint.readProvenance(ranksOf));
            if (ranks == null && lowrank != null) {
                throw new ParameterException(spec.commandLine(), "--lowrank " + ranksOf
                        + ": the checkpoint has no lowrank step (make one with ./skipflow lowrank)");
            }
        }
        var options = new ReportRunner.Options(texts, maxDocs, maxLen, sparsities, methods, arts, calibration,
                exitThresholds, speedModel, quick, protocol == Protocol.serving, route.routesDecode());
        List<Path> written = new java.util.ArrayList<>();
        if (bundlesOnly) {
            java.nio.file.Files.createDirectories(dir);
            java.nio.file.Files.writeString(dir.resolve("RESULTS.md"), "# Savings report: " + source.describe()
                    + "\n\nGenerated by `" + command + "`. Do not edit by hand: rerun the command.\n");
            java.nio.file.Files.deleteIfExists(dir.resolve("results.json"));
        } else {
            ReportRunner.Result result = ReportRunner.run(source, options, Progress::phase,
                    line -> System.err.println("report: " + line));
            written.addAll(ReportWriter.write(dir, command, result));
            if (ranks != null) {
                written.addAll(ReportWriter.ranks(dir, ranksOf, ranks));
            }
        }
        if (!modelBundles.isEmpty()) {
            var points = dev.skipflow.model.report.BundleReport.run(source, modelBundles, options.texts(),
                    options.maxDocs(), options.maxLen(), Progress::phase, line -> System.err.println("report: " + line));
            written.addAll(ReportWriter.bundles(dir, points));
        } else if (bundlesOnly) {
            throw new ParameterException(spec.commandLine(), "--bundles-only: no --bundle was made from "
                    + source.describe());
        }
        return written;
    }
}
