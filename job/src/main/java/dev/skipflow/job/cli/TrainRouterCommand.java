package dev.skipflow.job.cli;

import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.eval.Documents;
import dev.skipflow.model.eval.PerplexityEvaluator;
import dev.skipflow.model.eval.SkipOracle;
import dev.skipflow.model.routing.LearnedRouter;
import dev.skipflow.model.routing.RouterArtifact;
import dev.skipflow.model.routing.RouterTrainer;
import dev.skipflow.model.routing.ScheduleSearch;
import dev.skipflow.model.routing.SparsitySchedule;
import dev.skipflow.model.routing.StaticRouter;
import dev.skipflow.model.routing.TokenRouter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.function.Function;
import java.util.function.IntConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "train-router", mixinStandardHelpOptions = true,
        description = {"Builds FTP's token router for --router, on calibration text, in three phases:",
            "1. a genetic search of the per-block sparsity schedule (mean = --sparsity) with the static router;",
            "2. training the router (4 features -> MLP 64 -> keep score, shared by all blocks) with DJL autograd "
                    + "through the frozen model on that schedule;",
            "3. refining the schedule with the trained router.",
            "Candidates are scored by perplexity on held-out calibration documents, never on the evaluation text."})
public final class TrainRouterCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Option(names = "--sparsity", required = true, description = "Target token-block sparsity: the schedule's mean.")
    double sparsity;

    @Option(names = "--out", required = true, paramLabel = "PATH", description = "Artifact file to write (JSON).")
    Path out;

    @Option(names = "--calibration", paramLabel = "FILE",
            description = "Calibration text (default: ../shared/data/tinystories-train-sample.txt).")
    Path calibration;

    @Option(names = "--steps", defaultValue = "300", description = "Training steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--docs-per-step", defaultValue = "4", description = "Documents per training step (default: ${DEFAULT-VALUE}).")
    int docsPerStep;

    @Option(names = "--max-len", defaultValue = "64", description = "Tokens per calibration document (default: ${DEFAULT-VALUE}).")
    int maxLen;

    @Option(names = "--docs", defaultValue = "256", description = "Calibration documents for training (default: ${DEFAULT-VALUE}).")
    int docs;

    @Option(names = "--search-docs", defaultValue = "32",
            description = "Further calibration documents that score schedule candidates (default: ${DEFAULT-VALUE}).")
    int searchDocs;

    @Option(names = "--search-max-len", defaultValue = "256",
            description = "Tokens per document that scores schedule candidates; as long as the texts you will serve (default: ${DEFAULT-VALUE}).")
    int searchMaxLen;

    @Option(names = "--population", defaultValue = "16", description = "Schedule search: candidates per generation (default: ${DEFAULT-VALUE}).")
    int population;

    @Option(names = "--generations", defaultValue = "10",
            description = "Schedule search: generations per phase; 0 keeps the uniform schedule (default: ${DEFAULT-VALUE}).")
    int generations;

    @Option(names = "--learning-rate", defaultValue = "0.01", description = "Adam learning rate (default: ${DEFAULT-VALUE}).")
    float learningRate;

    @Option(names = "--sparsity-weight", defaultValue = "1", description = "Weight of the sparsity loss (default: ${DEFAULT-VALUE}).")
    float sparsityWeight;

    @Option(names = "--schedule-jitter", defaultValue = "0.1",
            description = "Sparsity moved between blocks per training step so the router sees varied schedules (default: ${DEFAULT-VALUE}).")
    double scheduleJitter;

    @Option(names = "--guide-fraction", defaultValue = "1",
            description = "Share of training over which the guide loss (toward the static router) decays to 0; 0 = none (default: ${DEFAULT-VALUE}).")
    double guideFraction;

    @Option(names = "--guide", defaultValue = "oracle", paramLabel = "oracle|static",
            description = "What the guide loss leads toward: the token-blocks whose skipping costs least on the calibration "
                    + "documents (oracle, measured by skipping each alone), or FTP's static router (default: ${DEFAULT-VALUE}).")
    String guide;

    @Option(names = "--oracle-docs", defaultValue = "48",
            description = "With --guide oracle, training documents measured token-block by token-block (default: ${DEFAULT-VALUE}).")
    int oracleDocs;

    @Option(names = "--distillation-weight", defaultValue = "0",
            description = "Weight of the distillation loss (default: ${DEFAULT-VALUE}).")
    float distillationWeight;

    @Option(names = "--schedule", split = ",", paramLabel = "S0,S1,...",
            description = "Per-block sparsity to train with instead of searching one (its mean replaces --sparsity's role).")
    double[] schedule;

    @Option(names = "--seed", defaultValue = "7", description = "Seed for training and search (default: ${DEFAULT-VALUE}).")
    long seed;

    @Override
    public Integer call() throws Exception {
        if (!(sparsity > 0 && sparsity < 1)) {
            throw new IllegalArgumentException("--sparsity must be in (0, 1), got " + sparsity);
        }
        if (steps < 1 || docsPerStep < 1 || docs < 1 || searchDocs < 1) {
            throw new IllegalArgumentException("--steps, --docs-per-step, --docs and --search-docs must be at least 1");
        }
        Path text = calibration != null ? calibration : ModelPaths.sharedData("tinystories-train-sample.txt");
        List<int[]> all = Documents.read(text, modelOptions.tokenizer(), Math.max(maxLen, searchMaxLen), docs + searchDocs);
        if (all.size() < 2) {
            throw new IllegalArgumentException(text + " has fewer than 2 documents");
        }
        int held = Math.min(searchDocs, all.size() / 2);
        List<int[]> scoring = all.subList(all.size() - held, all.size()).stream()
                .map(d -> java.util.Arrays.copyOf(d, Math.min(d.length, searchMaxLen))).toList();
        List<int[]> training = all.subList(0, all.size() - held).stream()
                .map(d -> java.util.Arrays.copyOf(d, Math.min(d.length, maxLen))).toList();
        RouterArtifact artifact;
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device())) {
            int layers = model.config().nLayers();
            PerplexityEvaluator evaluator = new PerplexityEvaluator(model);
            SparsitySchedule uniform = SparsitySchedule.uniform(sparsity, layers);
            ScheduleSearch.Options search = new ScheduleSearch.Options(population, generations, Math.max(0.1, sparsity), seed);

            SparsitySchedule searched = uniform;
            if (schedule != null) {
                if (schedule.length != layers) {
                    throw new IllegalArgumentException("--schedule has " + schedule.length + " values; the model has " + layers + " blocks");
                }
                searched = new SparsitySchedule(schedule);
                uniform = SparsitySchedule.uniform(searched.mean(), layers);
            } else if (generations > 0) {
                ScheduleSearch.Result r = search("search (static)", search, seeds(uniform), evaluator, scoring,
                        StaticRouter::new);
                searched = r.best();
                log("schedule searched with the static router: %s, calibration perplexity %.3f (uniform %.3f)",
                        searched, r.cost(), r.startCost());
            }
            List<float[][]> damage = null;
            if (guide.equals("oracle")) {
                training = training.subList(0, Math.min(oracleDocs, training.size()));
                damage = new java.util.ArrayList<>();
                try (ProgressBar bar = bar("skip oracle", training.size())) {
                    for (int[] doc : training) {
                        damage.add(SkipOracle.damage(model, doc));
                        bar.step();
                    }
                }
            } else if (!guide.equals("static")) {
                throw new IllegalArgumentException("--guide must be oracle or static, got " + guide);
            }
            RouterArtifact trained;
            try (ProgressBar bar = bar("train-router", steps)) {
                trained = RouterTrainer.train(model, modelOptions.describeModel(), training, damage,
                        new RouterTrainer.Options(searched, steps, learningRate, sparsityWeight, distillationWeight,
                                docsPerStep, scheduleJitter, guideFraction, seed), bar::stepTo);
            }
            log("trained: %s", trained.training());
            artifact = trained;
            if (generations > 0 && schedule == null) {
                RouterArtifact t = trained;
                SparsitySchedule start = searched;
                List<SparsitySchedule> seeds = new java.util.ArrayList<>(List.of(start));
                seeds.addAll(seeds(uniform));
                ScheduleSearch.Result r = search("refine (trained)", search, seeds, evaluator, scoring,
                        s -> new LearnedRouter(t, s));
                artifact = trained.withSchedule(r.best(), String.format(Locale.ROOT,
                        "schedule searched with the static router, then refined with the trained one (%d + %d generations "
                                + "of %d, on %d held-out calibration documents)", generations, generations, population, held));
                log("schedule refined with the trained router: %s, calibration perplexity %.3f (searched schedule %.3f)",
                        r.best(), r.cost(), r.startCost());
            }
        }
        artifact.save(out);
        System.out.println(out);
        return 0;
    }

    /** The uniform schedule first, then one concentrated on each block, so the search starts spread out. */
    private static List<SparsitySchedule> seeds(SparsitySchedule uniform) {
        List<SparsitySchedule> seeds = new java.util.ArrayList<>(List.of(uniform));
        seeds.addAll(ScheduleSearch.corners(uniform.mean(), uniform.perLayer().length));
        return seeds;
    }

    private static ScheduleSearch.Result search(String name, ScheduleSearch.Options o, List<SparsitySchedule> seeds,
            PerplexityEvaluator evaluator, List<int[]> scoring, Function<SparsitySchedule, TokenRouter> router) {
        try (ProgressBar bar = bar(name, o.evaluations())) {
            IntConsumer progress = bar::stepTo;
            return ScheduleSearch.search(seeds, s -> evaluator.evaluate(scoring, router.apply(s)).perplexity(), o, progress);
        }
    }

    private static ProgressBar bar(String name, int max) {
        return new ProgressBarBuilder().setTaskName(name).setInitialMax(max).setStyle(ProgressBarStyle.ASCII)
                .setConsumer(Progress.stderrConsumer()).build();
    }

    private static void log(String format, Object... args) {
        System.err.println("train-router: " + String.format(Locale.ROOT, format, args));
    }
}
