package dev.skipflow.job.cli;

import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.eval.Documents;
import dev.skipflow.model.routing.RouterArtifact;
import dev.skipflow.model.routing.RouterTrainer;
import dev.skipflow.model.routing.SparsitySchedule;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "train-router", mixinStandardHelpOptions = true,
        description = "Trains FTP's token router (4 features -> MLP 64 -> keep score, shared by all blocks) on calibration "
                + "text with DJL autograd through the frozen model, and writes the artifact for --router.")
public final class TrainRouterCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Option(names = "--sparsity", required = true, description = "Target token-block sparsity, uniform over blocks.")
    double sparsity;

    @Option(names = "--out", required = true, paramLabel = "PATH", description = "Artifact file to write (JSON).")
    Path out;

    @Option(names = "--calibration", paramLabel = "FILE",
            description = "Calibration text (default: ../shared/data/tinystories-train-sample.txt).")
    Path calibration;

    @Option(names = "--steps", defaultValue = "400", description = "Training steps, one document each (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--max-len", defaultValue = "64", description = "Tokens per training document (default: ${DEFAULT-VALUE}).")
    int maxLen;

    @Option(names = "--docs", defaultValue = "256", description = "Calibration documents to draw from (default: ${DEFAULT-VALUE}).")
    int docs;

    @Option(names = "--learning-rate", defaultValue = "0.01", description = "Adam learning rate (default: ${DEFAULT-VALUE}).")
    float learningRate;

    @Option(names = "--sparsity-weight", defaultValue = "10", description = "Weight of the sparsity loss (default: ${DEFAULT-VALUE}).")
    float sparsityWeight;

    @Override
    public Integer call() throws Exception {
        if (!(sparsity > 0 && sparsity < 1)) {
            throw new IllegalArgumentException("--sparsity must be in (0, 1), got " + sparsity);
        }
        Path text = calibration != null ? calibration : ModelPaths.sharedData("tinystories-train-sample.txt");
        var documents = Documents.read(text, modelOptions.tokenizer(), maxLen, docs);
        RouterArtifact artifact;
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device());
                ProgressBar bar = new ProgressBarBuilder().setTaskName("train-router").setInitialMax(steps)
                        .setStyle(ProgressBarStyle.ASCII).setConsumer(Progress.stderrConsumer()).build()) {
            artifact = RouterTrainer.train(model, modelOptions.describeModel(), documents,
                    new RouterTrainer.Options(SparsitySchedule.uniform(sparsity, model.config().nLayers()), steps,
                            learningRate, sparsityWeight, 7L), bar::stepTo);
        }
        artifact.save(out);
        System.err.println("train-router: " + artifact.training());
        System.out.println(out);
        return 0;
    }
}
