package dev.skipflow.model.report;

import ai.djl.Device;
import ai.djl.engine.Engine;
import dev.skipflow.model.weights.ModelWeights;
import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.ModelSource;
import dev.skipflow.model.SyntheticModels;
import dev.skipflow.model.bench.ThroughputBench;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.eval.PerplexityEvaluator;
import dev.skipflow.model.eval.ServingEvaluator;
import dev.skipflow.model.eval.Variants;
import dev.skipflow.model.exit.ExitArtifact;
import dev.skipflow.model.exit.ExitClassifier;
import dev.skipflow.model.exit.ExitTrainer;
import dev.skipflow.model.flops.Savings;
import dev.skipflow.model.routing.LearnedRouter;
import dev.skipflow.model.routing.RouterArtifact;
import dev.skipflow.model.routing.RouterSpec;
import dev.skipflow.model.routing.SparsitySchedule;
import dev.skipflow.model.routing.StaticRouter;
import dev.skipflow.model.routing.TokenRouter;
import dev.skipflow.model.tokenizer.Tokenizer;
import dev.skipflow.model.training.ExitTrainingDefaults;
import dev.skipflow.model.training.RouterRecipe;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.DoubleConsumer;

/**
 * Quality against compute in one sitting, as {@code report} measures it: the dense path and each adaptive
 * configuration (FTP's trained router over a sparsity sweep, AdaInfer's exit classifier over a threshold sweep,
 * both together, and the router baselines) side by side on each text, plus prefill wall-clock on a synthetic
 * shape where compute dominates; scored under the prefill protocol or the serving one ({@link Options#serving}).
 * Trained routers and the exit classifier come from an artifacts folder; missing ones are trained there first
 * (train-router's and train-exit's defaults) and reused by later runs.
 */
public final class ReportRunner {

    /** Every method the report knows, in the order its tables list them. */
    public static final List<String> METHODS = List.of("static", "random", "importance", "shortgpt", "learned", "exit",
            "learned+exit");

    /**
     * What to measure; the constructor refuses unknown methods and missing texts before anything runs.
     *
     * @param texts evaluation texts; null for the valid sample and WikiText-2
     * @param maxDocs documents per text
     * @param maxLen tokens per document
     * @param sparsities target sparsities of the router methods
     * @param methods some of {@link #METHODS}
     * @param artifacts folder of trained artifacts: router-SPARSITY.json and exit.json (-quick before .json with
     *     {@code quick}); missing ones are trained and written there
     * @param calibration text to train missing artifacts on; null for the train sample
     * @param exitThresholds exit thresholds to sweep besides the artifact's own
     * @param speedModel synthetic shape for prefill wall-clock; "none" to skip
     * @param quick a short run: sparsities 0.2 and 0.4, at most 20 documents per text, exit threshold 0.5,
     *     3 speed rounds, and short training for missing artifacts (kept apart as *-quick.json)
     * @param serving score under the serving protocol ({@link ServingEvaluator}: prompt prefilled, continuation
     *     decoded token by token and scored, greedy agreement beside) instead of the prefill protocol
     * @param routeDecode serving protocol: routers also act on decoding tokens (false: prompts only, FTP's setting)
     */
    public record Options(List<Path> texts, int maxDocs, int maxLen, double[] sparsities, List<String> methods,
            Path artifacts, Path calibration, double[] exitThresholds, String speedModel, boolean quick,
            boolean serving, boolean routeDecode) {

        public Options {
            if (routeDecode && !serving) {
                throw new IllegalArgumentException("routing decoding tokens applies to the serving protocol: under the "
                        + "prefill protocol every position is one prefill");
            }
            for (String m : methods) {
                if (!METHODS.contains(m)) {
                    throw new IllegalArgumentException("unknown method '" + m + "' in --methods; choose from " + METHODS);
                }
            }
            texts = texts != null ? List.copyOf(texts) : List.of(ModelPaths.sharedData("tinystories-valid-sample.txt"),
                    ModelPaths.sharedData("wikitext2-test.txt"));
            for (Path f : texts) {
                if (!Files.isRegularFile(f)) {
                    throw new IllegalArgumentException("Text file " + f + " does not exist (see ../shared/SOURCES.md)");
                }
            }
            calibration = calibration != null ? calibration : ModelPaths.sharedData("tinystories-train-sample.txt");
            if (quick) {
                maxDocs = Math.min(maxDocs, 20);
                sparsities = new double[] {0.2, 0.4};
                exitThresholds = new double[] {0.5};
            }
        }

        boolean measuresSpeed() {
            return !"none".equalsIgnoreCase(speedModel);
        }
    }

    /**
     * What a run measured.
     *
     * @param machine cores, JVM, engine, device and model of the run
     * @param artifacts trained artifacts the run used, by file name: where each came from and how it was trained
     * @param points the dense pass, then each configuration, per text
     * @param speed prefill wall-clock per sparsity on the speed model; empty when skipped
     * @param protocol how the points were scored, in words (prefill, or serving and where routers acted)
     */
    public record Result(Map<String, Object> machine, Map<String, String> artifacts, List<ReportPoint> points,
            List<SpeedPoint> speed, String protocol) {

        public boolean serving() {
            return !protocol.equals("prefill");
        }
    }

    /** One configuration's figures on one text, under either protocol (greedy agreement null under prefill). */
    private record Measured(PerplexityEvaluator.Variant variant, PerplexityEvaluator.Result result, double agreement,
            double medianSpeedup, Double greedyAgreement) {}

    /** One configuration to measure: its method, target sparsity (0 for exit alone), router and exit classifier. */
    private record Config(String method, double sparsity, TokenRouter router, ExitClassifier exit) {}

    private final Options o;
    private final RouterRecipe.Phases phases;
    private final Consumer<String> log;
    private final Map<String, String> artifacts = new LinkedHashMap<>();

    private ReportRunner(Options o, RouterRecipe.Phases phases, Consumer<String> log) {
        this.o = o;
        this.phases = phases;
        this.log = log;
    }

    /**
     * @param phases one stage per training phase of a missing artifact, then "report" over every document and
     *     speed point
     * @param log one line per finding (artifacts read or trained, training summaries)
     */
    public static Result run(ModelSource source, Options options, RouterRecipe.Phases phases, Consumer<String> log)
            throws IOException {
        return new ReportRunner(options, phases, log).run(source);
    }

    private Result run(ModelSource source) throws IOException {
        Map<String, Object> machine = new LinkedHashMap<>();
        machine.put("cores", Runtime.getRuntime().availableProcessors());
        machine.put("jvm", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        machine.put("engine", Engine.getInstance().getEngineName() + " " + Engine.getInstance().getVersion());
        ModelWeights weights = source.loadWeights();
        Tokenizer tokenizer = source.loadTokenizer(weights.spec().vocabSize());
        Device device = source.resolveDevice();
        List<ReportPoint> points = new ArrayList<>();
        List<SpeedPoint> speed = new ArrayList<>();
        try (LlamaModel model = new LlamaModel(weights, device)) {
            machine.put("device", model.device().toString());
            machine.put("model", source.describe());
            int layers = model.spec().nLayers();
            List<Config> configs = configs(model, source.describe(), tokenizer);
            List<PerplexityEvaluator.Variant> variants = configs.stream().map(c -> Variants.of(c.router(), c.exit()))
                    .toList();
            PerplexityEvaluator eval = new PerplexityEvaluator(model);
            List<List<int[]>> perText = new ArrayList<>();
            for (Path file : o.texts()) {
                perText.add(Documents.read(file, tokenizer, o.maxLen(), o.maxDocs()));
            }
            int total = perText.stream().mapToInt(List::size).sum() + (o.measuresSpeed() ? o.sparsities().length : 0);
            try (RouterRecipe.Phase phase = phases.open("report", total)) {
                int done = 0;
                for (int t = 0; t < o.texts().size(); t++) {
                    List<int[]> d = perText.get(t);
                    Path file = o.texts().get(t);
                    String name = file.getFileName() + " (" + d.size() + " docs, max " + o.maxLen() + " tokens)";
                    phase.status(file.getFileName() + ": dense + " + variants.size() + " configurations");
                    int offset = done;
                    PerplexityEvaluator.Result dense;
                    List<Measured> measured = new ArrayList<>();
                    if (o.serving()) {
                        var side = new ServingEvaluator(model, o.routeDecode()).compare(d, variants,
                                i -> phase.accept(offset + i));
                        dense = side.dense();
                        side.variants().forEach(v -> measured.add(new Measured(v.variant(), v.result(), v.agreement(),
                                v.medianSpeedup(), v.greedyAgreement())));
                    } else {
                        var side = eval.compareAll(d, variants, i -> phase.accept(offset + i));
                        dense = side.dense();
                        side.variants().forEach(v -> measured.add(new Measured(v.variant(), v.result(), v.agreement(),
                                v.medianSpeedup(), null)));
                    }
                    done += d.size();
                    // a compressed model's own dense path already saves what compression removed from the original
                    points.add(new ReportPoint(name, "dense", "dense", 0, dense.perplexity(), dense.perplexity(), 1,
                            dense.flops().savings().savedFraction(), 0, dense.seconds(), dense.seconds(), 1,
                            dense.tokensPerSecond(), o.serving() ? 1.0 : null));
                    for (int i = 0; i < configs.size(); i++) {
                        Config c = configs.get(i);
                        Measured v = measured.get(i);
                        Savings sv = v.result().flops().savings();
                        points.add(new ReportPoint(name, c.method(), v.variant().name(), c.sparsity(),
                                v.result().perplexity(), dense.perplexity(), v.agreement(), sv.savedFraction(),
                                sv.layersSavedFraction(layers), v.result().seconds(), dense.seconds(),
                                v.medianSpeedup(), v.result().tokensPerSecond(), v.greedyAgreement()));
                    }
                }
                if (o.measuresSpeed()) {
                    try (LlamaModel big = new LlamaModel(SyntheticModels.weights(o.speedModel(), 7L), device)) {
                        for (double s : o.sparsities()) {
                            phase.status(o.speedModel() + " prefill, static " + s);
                            var bench = new ThroughputBench(big, new ThroughputBench.Options(new int[] {1}, 1, 8, 256,
                                    o.quick() ? 3 : 15, 1234L, o.quick() ? 2 : 5));
                            var r = bench.prefillSideBySide(
                                    new StaticRouter(SparsitySchedule.uniform(s, big.spec().nLayers())), msg -> { });
                            speed.add(new SpeedPoint(o.speedModel(), r.router(), r.routed().tokens(), r.savedFraction(),
                                    r.dense().tokensPerSecond(), r.routed().tokensPerSecond(), r.speedup()));
                            phase.accept(++done);
                        }
                    }
                }
            }
        }
        return new Result(machine, artifacts, points, speed, !o.serving() ? "prefill"
                : o.routeDecode() ? "serving, prompts and decoding tokens routed" : "serving, prompts routed");
    }

    /** Every configuration of the asked methods, in their order, with the trained artifacts they need. */
    private List<Config> configs(LlamaModel model, String modelDescription, Tokenizer tokenizer) throws IOException {
        Map<Double, LearnedRouter> trained = new LinkedHashMap<>();
        if (o.methods().contains("learned") || o.methods().contains("learned+exit")) {
            for (double s : o.sparsities()) {
                Path file = o.artifacts().resolve(String.format(Locale.ROOT, "router-%.2f%s.json", s, o.quick() ? "-quick" : ""));
                trained.put(s, routerArtifact(model, modelDescription, tokenizer, file, s).routerFor(model, file));
            }
        }
        ExitClassifier exit = null;
        if (o.methods().contains("exit") || o.methods().contains("learned+exit")) {
            Path file = o.artifacts().resolve(o.quick() ? "exit-quick.json" : "exit.json");
            exit = exitArtifact(model, modelDescription, tokenizer, file).classifierFor(model, file);
        }
        List<Config> configs = new ArrayList<>();
        for (String method : o.methods()) {
            switch (method) {
                case "learned" -> eachSparsity(s -> configs.add(new Config(method, s, trained.get(s), null)));
                case "exit" -> {
                    configs.add(new Config(method, 0, null, exit));
                    for (double t : o.exitThresholds()) {
                        configs.add(new Config(method, 0, null, exit.withThreshold(t)));
                    }
                }
                case "learned+exit" -> {
                    ExitClassifier e = exit;
                    eachSparsity(s -> configs.add(new Config(method, s, trained.get(s), e)));
                }
                default -> eachSparsity(s -> configs.add(new Config(method, s,
                        new RouterSpec(method, s, null).build(model, tokenizer), null)));
            }
        }
        return configs;
    }

    private void eachSparsity(DoubleConsumer each) {
        for (double s : o.sparsities()) {
            each.accept(s);
        }
    }

    /** The trained router for {@code sparsity} from {@code file}, trained (FTP's recipe) and written there if missing. */
    private RouterArtifact routerArtifact(LlamaModel model, String modelDescription, Tokenizer tokenizer, Path file,
            double sparsity) throws IOException {
        if (Files.exists(file)) {
            log.accept("using the trained router " + file + " (delete it to retrain)");
            RouterArtifact a = RouterArtifact.load(file);
            artifacts.put(file.getFileName().toString(), "read from " + file + ": " + a.training());
            return a;
        }
        RouterRecipe.Options recipe = RouterRecipe.Options.defaults(sparsity);
        if (o.quick()) {
            recipe = recipe.quick();
        }
        log.accept(String.format(Locale.ROOT, "no trained router at %s: training one for sparsity %.2f (train-router's %s)",
                file, sparsity, o.quick() ? "settings shortened by --quick" : "defaults"));
        List<int[]> text = Documents.read(o.calibration(), tokenizer, recipe.longestDocument(), recipe.documentsNeeded());
        RouterArtifact a = RouterRecipe.run(model, modelDescription, text, recipe, phases, log);
        a.save(file);
        artifacts.put(file.getFileName().toString(), "trained by this run: " + a.training());
        return a;
    }

    /** The exit classifier from {@code file}, trained (train-exit's defaults) and written there if missing. */
    private ExitArtifact exitArtifact(LlamaModel model, String modelDescription, Tokenizer tokenizer, Path file)
            throws IOException {
        if (Files.exists(file)) {
            log.accept("using the exit classifier " + file + " (delete it to retrain)");
            ExitArtifact a = ExitArtifact.load(file);
            artifacts.put(file.getFileName().toString(), "read from " + file + ": " + a.training());
            return a;
        }
        int docs = o.quick() ? 80 : ExitTrainingDefaults.DOCUMENTS;
        log.accept("no exit classifier at " + file + ": training one (train-exit's "
                + (o.quick() ? "defaults on " + docs + " documents)" : "defaults)"));
        List<int[]> text = Documents.read(o.calibration(), tokenizer, ExitTrainingDefaults.MAX_LEN, docs);
        ExitTrainer.Result r;
        try (RouterRecipe.Phase phase = phases.open("train-exit", text.size())) {
            r = ExitTrainer.train(model, modelDescription, text, ExitTrainer.Options.defaults(), phase, log);
        }
        r.artifact().save(file);
        artifacts.put(file.getFileName().toString(), "trained by this run: " + r.artifact().training());
        return r.artifact();
    }
}
