package dev.skipflow.job.cli;

import ai.djl.engine.Engine;
import dev.skipflow.job.report.ReportPoint;
import dev.skipflow.job.report.ReportWriter;
import dev.skipflow.job.report.SpeedPoint;
import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.SyntheticModels;
import dev.skipflow.model.bench.ThroughputBench;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.eval.Documents;
import dev.skipflow.model.eval.PerplexityEvaluator;
import dev.skipflow.model.flops.Savings;
import dev.skipflow.model.exit.ExitArtifact;
import dev.skipflow.model.exit.ExitClassifier;
import dev.skipflow.model.exit.ExitTrainer;
import dev.skipflow.model.routing.LearnedRouter;
import dev.skipflow.model.routing.RouterArtifact;
import dev.skipflow.model.routing.RouterSpec;
import dev.skipflow.model.routing.TokenRouter;
import dev.skipflow.model.training.RouterRecipe;
import dev.skipflow.model.routing.SparsitySchedule;
import dev.skipflow.model.routing.StaticRouter;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "report", mixinStandardHelpOptions = true,
        description = {"Measures quality against compute in one sitting: the dense path and each adaptive configuration "
                + "(FTP's trained router over a sparsity sweep, AdaInfer's exit classifier over a threshold sweep, both "
                + "together, and the router baselines), on the valid sample and WikiText-2 (or --text files), plus "
                + "prefill wall-clock on a model shape where compute dominates.",
            "Trained routers and the exit classifier are read from --artifacts; missing ones are first trained there "
                    + "(train-router's and train-exit's defaults, a few minutes each) and reused by later runs.",
            "Writes results.json, RESULTS.md and PNG plots into --out."})
public final class ReportCommand implements Callable<Integer> {

    /** Every method the report knows, in the order its tables list them. */
    static final List<String> METHODS = List.of("static", "random", "importance", "shortgpt", "learned", "exit",
            "learned+exit");

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

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

    @Option(names = "--quick", description = "A short run: sparsities 0.2 and 0.4, 20 documents per text, two exit "
            + "thresholds, 3 speed rounds, and short training for missing artifacts (kept apart as *-quick.json).")
    boolean quick;

    @Override
    public Integer call() throws Exception {
        for (String m : methods) {
            if (!METHODS.contains(m)) {
                throw new IllegalArgumentException("unknown method '" + m + "' in --methods; choose from " + METHODS);
            }
        }
        List<Path> files = texts != null ? texts : List.of(ModelPaths.sharedData("tinystories-valid-sample.txt"),
                ModelPaths.sharedData("wikitext2-test.txt"));
        for (Path f : files) {
            if (!Files.isRegularFile(f)) {
                throw new IllegalArgumentException("Text file " + f + " does not exist (see ../shared/SOURCES.md)");
            }
        }
        int docs = quick ? Math.min(maxDocs, 20) : maxDocs;
        double[] sweep = quick ? new double[] {0.2, 0.4} : sparsities;
        double[] thresholds = quick ? new double[] {0.5} : exitThresholds;
        Path artifactDir = artifacts != null ? artifacts : out.resolve("artifacts");
        boolean wantsRouters = methods.contains("learned") || methods.contains("learned+exit");
        boolean wantsExit = methods.contains("exit") || methods.contains("learned+exit");

        List<ReportPoint> points = new ArrayList<>();
        List<SpeedPoint> speed = new ArrayList<>();
        Map<String, Object> machine = new LinkedHashMap<>();
        machine.put("cores", Runtime.getRuntime().availableProcessors());
        machine.put("jvm", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        machine.put("engine", Engine.getInstance().getEngineName() + " " + Engine.getInstance().getVersion());
        Tokenizer tokenizer = modelOptions.tokenizer();
        boolean measureSpeed = !"none".equalsIgnoreCase(speedModel);
        Map<String, String> provenance = new LinkedHashMap<>();
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device())) {
            machine.put("device", model.device().toString());
            machine.put("model", modelOptions.describeModel());
            int layers = model.config().nLayers();
            Map<Double, LearnedRouter> trained = new LinkedHashMap<>();
            if (wantsRouters) {
                for (double s : sweep) {
                    Path file = artifactDir.resolve(String.format(Locale.ROOT, "router-%.2f%s.json", s, quick ? "-quick" : ""));
                    trained.put(s, routerArtifact(model, file, s, provenance).routerFor(model, file));
                }
            }
            ExitClassifier exit = null;
            if (wantsExit) {
                Path file = artifactDir.resolve(quick ? "exit-quick.json" : "exit.json");
                exit = exitArtifact(model, file, provenance).classifierFor(model, file);
            }

            List<Config> configs = new ArrayList<>();
            for (String method : methods) {
                switch (method) {
                    case "learned" -> sweepOf(sweep, s -> configs.add(new Config(method, s, trained.get(s), null)));
                    case "exit" -> {
                        configs.add(new Config(method, 0, null, exit));
                        for (double t : thresholds) {
                            configs.add(new Config(method, 0, null, exit.withThreshold(t)));
                        }
                    }
                    case "learned+exit" -> {
                        ExitClassifier e = exit;
                        sweepOf(sweep, s -> configs.add(new Config(method, s, trained.get(s), e)));
                    }
                    default -> sweepOf(sweep, s -> configs.add(new Config(method, s,
                            new RouterSpec(method, s, null).build(model, tokenizer), null)));
                }
            }
            List<PerplexityEvaluator.Variant> variants = configs.stream().map(Config::variant).toList();
            PerplexityEvaluator eval = new PerplexityEvaluator(model);
            List<List<int[]>> perText = new ArrayList<>();
            for (Path file : files) {
                perText.add(Documents.read(file, tokenizer, maxLen, docs));
            }
            int total = perText.stream().mapToInt(List::size).sum() + (measureSpeed ? sweep.length : 0);
            try (ProgressBar bar = Progress.bar("report", total)) {
                int before = 0;
                for (int t = 0; t < files.size(); t++) {
                    List<int[]> d = perText.get(t);
                    String name = files.get(t).getFileName() + " (" + d.size() + " docs, max " + maxLen + " tokens)";
                    bar.setExtraMessage(files.get(t).getFileName() + ": dense + " + variants.size() + " configurations");
                    int offset = before;
                    var side = eval.compareAll(d, variants, i -> bar.stepTo(offset + i));
                    before += d.size();
                    var dense = side.dense();
                    points.add(new ReportPoint(name, "dense", "dense", 0, dense.perplexity(), dense.perplexity(), 1, 0, 0,
                            dense.seconds(), dense.seconds(), 1, tokens(dense) / dense.seconds()));
                    for (int i = 0; i < configs.size(); i++) {
                        Config c = configs.get(i);
                        var v = side.variants().get(i);
                        Savings sv = v.result().flops().savings();
                        points.add(new ReportPoint(name, c.method(), v.variant().name(), c.sparsity(),
                                v.result().perplexity(), dense.perplexity(), v.agreement(), sv.savedFraction(),
                                sv.layersSavedFraction(layers), v.result().seconds(), dense.seconds(),
                                v.medianSpeedup(), tokens(v.result()) / v.result().seconds()));
                    }
                }
                if (measureSpeed) {
                    try (LlamaModel big = new LlamaModel(SyntheticModels.weights(speedModel, 7L), modelOptions.device())) {
                        for (double s : sweep) {
                            bar.setExtraMessage(speedModel + " prefill, static " + s);
                            var bench = new ThroughputBench(big, new ThroughputBench.Options(new int[] {1}, 1, 8, 256,
                                    quick ? 3 : 15, 1234L, quick ? 2 : 5));
                            var r = bench.prefillSideBySide(
                                    new StaticRouter(SparsitySchedule.uniform(s, big.config().nLayers())), msg -> { });
                            speed.add(new SpeedPoint(speedModel, r.router(), r.routed().tokens(), r.savedFraction(),
                                    r.dense().tokensPerSecond(), r.routed().tokensPerSecond(), r.speedup()));
                            bar.step();
                        }
                    }
                }
            }
        }
        String command = "./skipflow " + String.join(" ", spec.commandLine().getParseResult().originalArgs());
        List<Path> written = ReportWriter.write(out, machine, command, provenance, points, speed);
        System.err.println("report: wrote " + written.size() + " files to " + out.toAbsolutePath());
        written.forEach(p -> System.out.println(p));
        return 0;
    }

    /** One configuration to measure: its method, target sparsity (0 for exit alone), router and exit classifier. */
    private record Config(String method, double sparsity, TokenRouter router, ExitClassifier exit) {
        PerplexityEvaluator.Variant variant() {
            String name = router == null ? "exit " + exit.describe()
                    : exit == null ? router.describe() : router.describe() + " + exit " + exit.describe();
            return new PerplexityEvaluator.Variant(name, router, exit);
        }
    }

    private static void sweepOf(double[] sweep, java.util.function.DoubleConsumer each) {
        for (double s : sweep) {
            each.accept(s);
        }
    }

    /** The trained router for {@code sparsity} from {@code file}, trained (FTP's recipe) and written there if missing. */
    private RouterArtifact routerArtifact(LlamaModel model, Path file, double sparsity, Map<String, String> provenance)
            throws java.io.IOException {
        if (Files.exists(file)) {
            log("using the trained router " + file + " (delete it to retrain)");
            RouterArtifact a = RouterArtifact.load(file);
            provenance.put(file.getFileName().toString(), "read from " + file + ": " + a.training());
            return a;
        }
        RouterRecipe.Options o = RouterRecipe.Options.defaults(sparsity);
        if (quick) {
            o = o.quick();
        }
        log(String.format(Locale.ROOT, "no trained router at %s: training one for sparsity %.2f (train-router's %s)",
                file, sparsity, quick ? "settings shortened by --quick" : "defaults"));
        List<int[]> text = Documents.read(calibrationText(), modelOptions.tokenizer(), o.longestDocument(),
                o.documentsNeeded());
        RouterArtifact a = RouterRecipe.run(model, modelOptions.describeModel(), text, o, Progress::phase,
                line -> log(line));
        a.save(file);
        provenance.put(file.getFileName().toString(), "trained by this run: " + a.training());
        return a;
    }

    /** The exit classifier from {@code file}, trained (train-exit's defaults) and written there if missing. */
    private ExitArtifact exitArtifact(LlamaModel model, Path file, Map<String, String> provenance)
            throws java.io.IOException {
        if (Files.exists(file)) {
            log("using the exit classifier " + file + " (delete it to retrain)");
            ExitArtifact a = ExitArtifact.load(file);
            provenance.put(file.getFileName().toString(), "read from " + file + ": " + a.training());
            return a;
        }
        int docs = quick ? 80 : TrainExitCommand.DEFAULT_DOCS;
        log("no exit classifier at " + file + ": training one (train-exit's "
                + (quick ? "defaults on " + docs + " documents)" : "defaults)"));
        List<int[]> text = Documents.read(calibrationText(), modelOptions.tokenizer(), TrainExitCommand.DEFAULT_MAX_LEN, docs);
        ExitTrainer.Result r;
        try (ProgressBar bar = Progress.bar("train-exit", text.size())) {
            r = ExitTrainer.train(model, modelOptions.describeModel(), text, ExitTrainer.Options.defaults(), bar::stepTo,
                    line -> log(line));
        }
        r.artifact().save(file);
        provenance.put(file.getFileName().toString(), "trained by this run: " + r.artifact().training());
        return r.artifact();
    }

    private Path calibrationText() {
        return calibration != null ? calibration : ModelPaths.sharedData("tinystories-train-sample.txt");
    }

    private static void log(String line) {
        System.err.println("report: " + line);
    }

    private static long tokens(PerplexityEvaluator.Result r) {
        return r.predictedTokens() + r.documents();
    }
}
