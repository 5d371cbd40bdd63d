package dev.skipflow.job.cli;

import dev.skipflow.job.options.ModelOptions;
import dev.skipflow.job.report.ReportWriter;
import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.ModelSource;
import dev.skipflow.model.compression.CheckpointOutput;
import dev.skipflow.model.compression.lowrank.Crossover;
import dev.skipflow.model.compression.lowrank.LowRank;
import dev.skipflow.model.compression.lowrank.LowRankOptions;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.weights.ModelWeights;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "lowrank", mixinStandardHelpOptions = true,
        description = {"Adaptive low rank (SoftLMs): decompose every block's q, k, v, o, gate, up and down by SVD and keep "
                + "--params-ratio of their parameters -- with a learned soft threshold per layer (sigma' = relu(sigma - "
                + "tau), distilled from the dense model on calibration text under a parameter budget: --method learned, "
                + "the default), or one rank per kind of map (--method uniform, truncated SVD).",
            "Each map keeps rank r = #{sigma > tau}: stored as two factors when r (in + out) < in out and, by the "
                    + "crossover measured on this machine (--crossover), no slower than its dense matrix; else as the "
                    + "dense reconstruction. SVDs are cached per model (--svd-cache) and refused when the model changed.",
            "Writes a compressed checkpoint folder (model.safetensors + skipflow.json, the tokenizer and ranks.png beside "
                    + "them) that every command loads with --model DIR; FLOPs saved count against the original model."})
public final class LowrankCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Option(names = "--params-ratio", required = true, paramLabel = "P",
            description = "Share of the linear layers' parameters kept, in (0, 1].")
    double paramsRatio;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Checkpoint folder to write.")
    Path out;

    @Option(names = "--force", description = "Replace --out if it is an existing checkpoint folder.")
    boolean force;

    @Option(names = "--method", defaultValue = "learned", paramLabel = "M",
            description = "learned (SoftLMs' soft thresholds) or uniform (one rank per kind of map) (default: ${DEFAULT-VALUE}).")
    String method;

    @Option(names = "--calibration", paramLabel = "FILE",
            description = "Calibration text, one document per line (default: ../shared/data/tinystories-train-sample.txt).")
    Path calibration;

    @Option(names = "--samples", defaultValue = "32", description = "Calibration samples (default: ${DEFAULT-VALUE}).")
    int samples;

    @Option(names = "--sample-length", defaultValue = "128", description = "Tokens per sample (default: ${DEFAULT-VALUE}).")
    int sampleLength;

    @Option(names = "--steps", defaultValue = "200", description = "Training steps for the thresholds (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--docs-per-step", defaultValue = "4", description = "Samples per step (default: ${DEFAULT-VALUE}).")
    int docsPerStep;

    @Option(names = "--budget-weight", defaultValue = "10", paramLabel = "W",
            description = "Weight of (soft parameters / budget - 1)^2 beside the KL term (default: ${DEFAULT-VALUE}).")
    double budgetWeight;

    @Option(names = "--lr", defaultValue = "0.003",
            description = "Adam learning rate of the thresholds, in units of each layer's largest singular value "
                    + "(default: ${DEFAULT-VALUE}).")
    float lr;

    @Option(names = "--temperature", defaultValue = "0.02",
            description = "Soft rank sum sigmoid((s_i / s_0 - t) / T) (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--tune-factors", description = "Train U and V along with the thresholds.")
    boolean tuneFactors;

    @Option(names = "--factor-lr", defaultValue = "1e-4", description = "Adam learning rate of U and V (default: ${DEFAULT-VALUE}).")
    float factorLr;

    @Option(names = "--operator", defaultValue = "gate", paramLabel = "relu|gate",
            description = "Operator trained: gate = s sigmoid((s / s_0 - t) / T), a differentiable hard threshold that "
                    + "trains the values served; relu = SoftLMs' relu(s - tau), which trains on shrunk values while "
                    + "--values hard serves the original ones (less robust across seeds: docs/PERFORMANCE.md) "
                    + "(default: ${DEFAULT-VALUE}).")
    String operator;

    @Option(names = "--values", defaultValue = "hard", paramLabel = "soft|hard",
            description = "Kept singular values of a learned model: soft = s - tau as trained, hard = s (default: ${DEFAULT-VALUE}).")
    String values;

    @Option(names = "--crossover", defaultValue = "measure", paramLabel = "measure|params",
            description = "measure: time factored against dense matmuls for each shape on this machine and factor only "
                    + "up to the rank where that is no slower; params: factor whenever r (in + out) < in out (default: "
                    + "${DEFAULT-VALUE}).")
    String crossover;

    @Option(names = "--crossover-rows", split = ",", defaultValue = "256,64",
            description = "Row counts the crossover is measured at: a prefill chunk and a decode batch (default: ${DEFAULT-VALUE}).")
    int[] crossoverRows;

    @Option(names = "--svd-cache", paramLabel = "DIR",
            description = "Folder caching the model's SVDs (default: target/lowrank-svd/<model>-<hash of its path>); "
                    + "'none' for no cache.")
    String svdCache;

    @Option(names = "--refresh-svd", description = "Recompute an SVD cache made for a model that has since changed.")
    boolean refreshSvd;

    @Option(names = "--seed", defaultValue = "42", description = "Seed for samples and steps (default: ${DEFAULT-VALUE}).")
    long seed;

    @Override
    public Integer call() throws Exception {
        LowRankOptions.requireRatio(paramsRatio);
        CheckpointOutput.requireWritable(out, force);
        if (!operator.equals("relu") && !operator.equals("gate")) {
            throw new IllegalArgumentException("--operator must be relu or gate, got " + operator);
        }
        if (!values.equals("soft") && !values.equals("hard")) {
            throw new IllegalArgumentException("--values must be soft or hard, got " + values);
        }
        LowRankOptions o = new LowRankOptions(paramsRatio, LowRankOptions.Method.parse(method), samples, sampleLength,
                steps, docsPerStep, budgetWeight, lr, temperature, tuneFactors, factorLr, operator.equals("gate"), values.equals("soft"), seed);
        Crossover cross = switch (crossover) {
            case "measure" -> Crossover.measured(modelOptions.device(), crossoverRows);
            case "params" -> Crossover.params();
            default -> throw new IllegalArgumentException("--crossover must be measure or params, got " + crossover);
        };
        ModelSource source = modelOptions.source();
        ModelWeights input = modelOptions.weights();
        Path text = calibration != null ? calibration : ModelPaths.sharedData("tinystories-train-sample.txt");
        boolean learned = o.method() == LowRankOptions.Method.LEARNED;
        List<int[]> docs = learned ? Documents.read(text, modelOptions.tokenizer(), sampleLength, 0) : List.of();
        Map<String, Object> extra = new LinkedHashMap<>();
        if (learned) {
            extra.put("calibration", text.toString());
            // MKL (inside libtorch) picks gemm kernels by memory alignment; 200 Adam steps amplify the last-bit
            // differences, so two runs with one --seed differ unless its conditional numerical reproducibility is on
            String cbwr = System.getenv("MKL_CBWR");
            extra.put("mklCbwr", cbwr == null ? "unset (runs not bit-reproducible)" : cbwr);
            if (cbwr == null) {
                System.err.println("lowrank: MKL_CBWR is unset, so runs with the same --seed are not bit-reproducible; "
                        + "MKL_CBWR=COMPATIBLE makes them so (see docs/PERFORMANCE.md, Low rank)");
            } else if (crossover.equals("measure")) {
                System.err.println("lowrank: MKL_CBWR=" + cbwr + " also applies to the crossover timing, which then "
                        + "times those kernels, not serving's; use --crossover params with it, or measure without it");
            }
        }
        Path modelPath = source.synthetic() != null ? null : source.modelPath();
        Path cache = svdCacheDir(source, modelPath);
        long start = System.nanoTime();
        LowRank.Result r = LowRank.run(input, docs, o, cross, cache, refreshSvd, extra, modelOptions.device(),
                Progress::phase);
        double seconds = (System.nanoTime() - start) / 1e9;

        Path plot = Files.createTempDirectory(tmpRoot(), "lowrank-plot").resolve("ranks.png");
        ReportWriter.rankPlot(plot, o.method().label() + " ranks, " + paramsRatio + " of the linear parameters kept ("
                + (modelPath != null ? modelPath.getFileName() : "synthetic " + source.synthetic()) + ")", r.layers());
        try {
            CheckpointOutput.write(source, input, r.weights(), r.step(), out, force, List.of(plot));
        } finally {
            Files.deleteIfExists(plot);
            Files.deleteIfExists(plot.getParent());
        }
        printSummary(input, r, seconds, cross);
        return 0;
    }

    private static Path tmpRoot() throws java.io.IOException {
        Path t = Path.of(System.getProperty("java.io.tmpdir"));
        Files.createDirectories(t);
        return t;
    }

    private Path svdCacheDir(ModelSource source, Path modelPath) {
        if ("none".equals(svdCache)) {
            return null;
        }
        if (svdCache != null) {
            return Path.of(svdCache);
        }
        String name = source.synthetic() != null ? "synthetic-" + source.synthetic()
                : modelPath.getFileName().toString().replaceAll("[^A-Za-z0-9._-]", "_");
        String where = source.synthetic() != null ? source.synthetic() : modelPath.toAbsolutePath().normalize().toString();
        return Path.of("target", "lowrank-svd", name + "-" + Integer.toHexString(where.hashCode()));
    }


    private void printSummary(ModelWeights input, LowRank.Result r, double seconds, Crossover cross) {
        long before = input.parameterCount();
        long after = r.weights().parameterCount();
        System.out.printf("low rank (%s) of %s, %s of the linear parameters kept, in %.1f s -> %s%n", method,
                modelOptions.describeModel(), paramsRatio, seconds, out);
        System.out.printf("linear parameters: %,d; budget %,d; ranks cost %,d (%.1f%%); stored %,d (%.1f%%: dense "
                + "reconstructions count whole)%n", r.linearParameters(), r.budget(), r.rankedParameters(),
                100.0 * r.rankedParameters() / r.linearParameters(), r.storedParameters(),
                100.0 * r.storedParameters() / r.linearParameters());
        System.out.printf("parameters: %,d -> %,d (%.1f%% of the model removed)%n", before, after,
                100.0 * (before - after) / before);
        if (r.training() != null) {
            System.out.printf("soft thresholds: %d steps, KL %.4f -> %.4f (last 10 steps), loss %.4f -> %.4f%s%n", steps,
                    r.training().firstKl(), r.training().lastKl(), r.training().firstLoss(), r.training().lastLoss(),
                    r.training().skippedSteps() > 0 ? ", " + r.training().skippedSteps() + " non-finite steps dropped" : "");
        }
        Map<String, Object> c = cross.describe();
        System.out.println("crossover: " + c.get("mode") + (c.containsKey("shapes") ? "" : " (" + c.get("rule") + ")"));
        if (c.get("shapes") instanceof List<?> shapes) {
            for (Object s : shapes) {
                Map<?, ?> m = (Map<?, ?>) s;
                System.out.printf("  [%s -> %s]: factored up to rank %s (break-even %s); dense us/call %s, factored at "
                        + "the crossover %s%n", m.get("in"), m.get("out"), m.get("crossoverRank"), m.get("breakEvenRank"),
                        m.get("denseMicros"), m.get("factoredMicrosAtCrossover"));
            }
        }
        StringBuilder head = new StringBuilder(String.format("%-6s", "block"));
        for (String n : LowRank.NAMES) {
            head.append(String.format(" %-12s", n));
        }
        System.out.println(head + "   (rank/full; f = factored, d = dense reconstruction, o = original)");
        for (int l = 0; l < input.spec().nLayers(); l++) {
            StringBuilder row = new StringBuilder(String.format("%-6d", l));
            for (LowRank.Layer x : r.layers()) {
                if (x.block() == l) {
                    String k = switch (x.stored()) {
                        case FACTORED -> "f";
                        case DENSE_RECONSTRUCTION -> "d";
                        default -> "o";
                    };
                    row.append(String.format(" %-12s", x.rank() + "/" + x.fullRank() + " " + k));
                }
            }
            System.out.println(row);
        }
        long factored = r.layers().stream().filter(x -> x.stored() == LowRank.Stored.FACTORED).count();
        System.out.printf(Locale.ROOT, "%d of %d maps factored%n", factored, r.layers().size());
    }
}
