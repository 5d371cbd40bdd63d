package dev.skipflow.job.cli;

import dev.skipflow.job.options.ModelOptions;
import dev.skipflow.job.options.Route;
import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.routing.RouterArtifact;
import dev.skipflow.model.training.RouterRecipe;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "train-router", mixinStandardHelpOptions = true,
        description = {"Builds FTP's token router for --router, on calibration text, in three phases:",
            "1. a genetic search of the per-block sparsity schedule (mean = --sparsity) with the static router;",
            "2. training the router (4 features -> MLP 64 -> keep score, shared by all blocks) with DJL autograd "
                    + "through the frozen model on that schedule;",
            "3. refining the schedule with the trained router.",
            "Candidates are scored by perplexity on held-out calibration documents, never on the evaluation text.",
            "With --recalibrate FILE it trains nothing: it calibrates that artifact's decode cuts again (per position "
                    + "bucket, on the same held-out documents; with --decode-sparsity for a new decode share) and writes "
                    + "the result to --out."})
public final class TrainRouterCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Option(names = "--sparsity", description = "Target token-block sparsity: the schedule's mean (required unless "
            + "--recalibrate).")
    Double sparsity;

    @Option(names = "--recalibrate", paramLabel = "FILE",
            description = "A router artifact for this model whose decode cuts to calibrate again; its router weights, "
                    + "prefill schedule and route are kept (artifacts from before the position buckets have one cut per "
                    + "block).")
    Path recalibrate;

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

    @Option(names = "--route", paramLabel = "prompt|all",
            description = "Where the router acts by default when served (eval, bench, job and demo's --route overrides it): "
                    + "prompt = the prefill only (FTP's own setting; training then routes each document's first half and "
                    + "scores only the predictions served after it), all = prefill and decode (default: all; with --recalibrate, the "
                    + "artifact's).")
    Route route;

    @Option(names = "--decode-sparsity", paramLabel = "D",
            description = "With --route all: decoding tokens skip this share of their token-blocks on average, spread "
                    + "over blocks by 1/influence^2 (ShortGPT's block influence on the held-out documents; default: the "
                    + "schedule itself). A decoding token's skip costs its own "
                    + "prediction, a prompt token's only what later tokens read of it, so skipping more in the prompt and "
                    + "less in decode keeps more agreement for the same share of all token-blocks.")
    Double decodeSparsity;

    @Option(names = "--guide", defaultValue = "oracle", paramLabel = "oracle|oracle-nll|static|mixed",
            description = "What the guide loss leads toward: the token-blocks whose skipping alone flips the fewest top-1 "
                    + "predictions on the calibration documents (oracle, the agreement routers are judged by), those that "
                    + "add the least NLL (oracle-nll), FTP's static router, or (with --per-token) the mixed-rank router: "
                    + "the sink, a recent share of each block's budget and the rest by block 0's importance, at the share "
                    + "(0, 0.25, 0.5 or 0.75) that keeps the most agreement on the held-out documents (default: "
                    + "${DEFAULT-VALUE}).")
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

    @Option(names = "--per-token", description = "Per-token decisions: block 0 runs every prompt token and the router "
            + "ranks each token once, from the attention block 0 measured, for every later block (their shares scaled "
            + "up to keep the mean), so a skipped token stays skipped; default: every block ranks the tokens again "
            + "(FTP's router).")
    boolean perToken;

    @Option(names = "--seed", defaultValue = "7", description = "Seed for training and search (default: ${DEFAULT-VALUE}).")
    long seed;

    @Override
    public Integer call() throws Exception {
        picocli.CommandLine cmd = new picocli.CommandLine(this);
        RouterArtifact source = null;
        if (recalibrate != null) {
            if (sparsity != null || schedule != null || perToken) {
                throw new picocli.CommandLine.ParameterException(cmd, "--recalibrate keeps the artifact's schedule "
                        + "and decisions: give no --sparsity, --schedule or --per-token");
            }
            source = RouterArtifact.load(recalibrate);
        } else if (sparsity == null) {
            throw new picocli.CommandLine.ParameterException(cmd, "Missing required option: '--sparsity=<sparsity>'");
        }
        String servedRoute = route != null ? route.name() : source != null ? source.route() : "all";
        if (decodeSparsity != null && (servedRoute.equals("prompt") || !(decodeSparsity >= 0 && decodeSparsity < 1))) {
            throw new picocli.CommandLine.ParameterException(cmd, servedRoute.equals("prompt")
                    ? "--decode-sparsity needs --route all: with --route prompt decoding tokens run every block"
                    : "--decode-sparsity must be in [0, 1), got " + decodeSparsity);
        }
        Path text = calibration != null ? calibration : ModelPaths.sharedData("tinystories-train-sample.txt");
        double d = decodeSparsity == null ? Double.NaN : decodeSparsity;
        RouterArtifact artifact;
        if (source != null) {
            List<int[]> all = Documents.read(text, modelOptions.tokenizer(), searchMaxLen, docs + searchDocs);
            try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device())) {
                source.requireModel(model.fingerprint(), model.spec().nLayers(), recalibrate);
                System.err.println("train-router: calibrating the decode cuts of " + recalibrate + " again");
                artifact = RouterRecipe.recalibrate(model, source, all, searchDocs, searchMaxLen, d,
                        line -> System.err.println("train-router: " + line));
            }
        } else {
            RouterRecipe.Guide g = switch (guide) {
                case "oracle" -> RouterRecipe.Guide.ORACLE;
                case "oracle-nll" -> RouterRecipe.Guide.ORACLE_NLL;
                case "static" -> RouterRecipe.Guide.STATIC;
                case "mixed" -> {
                    if (!perToken) {
                        throw new picocli.CommandLine.ParameterException(cmd, "--guide mixed ranks each token once: "
                                + "add --per-token");
                    }
                    yield RouterRecipe.Guide.MIXED;
                }
                default -> throw new picocli.CommandLine.ParameterException(cmd,
                        "--guide must be oracle, oracle-nll, static or mixed, got " + guide);
            };
            RouterRecipe.Options o = new RouterRecipe.Options(sparsity, schedule, steps, docsPerStep, maxLen, docs,
                    searchDocs, searchMaxLen, population, generations, learningRate, sparsityWeight, scheduleJitter,
                    guideFraction, g, oracleDocs, distillationWeight, seed).withPromptOnly(servedRoute.equals("prompt"))
                    .withDecodeSparsity(d).withPerToken(perToken);
            List<int[]> all = Documents.read(text, modelOptions.tokenizer(), o.longestDocument(), o.documentsNeeded());
            try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device())) {
                artifact = RouterRecipe.run(model, modelOptions.describeModel(), all, o, Progress::phase,
                        line -> System.err.println("train-router: " + line));
            }
        }
        artifact = artifact.withRoute(servedRoute);
        artifact.save(out);
        System.out.println(out);
        return 0;
    }
}
