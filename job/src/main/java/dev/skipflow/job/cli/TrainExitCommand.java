package dev.skipflow.job.cli;

import dev.skipflow.job.options.ModelOptions;
import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.exit.ExitTrainer;
import dev.skipflow.model.training.ExitTrainingDefaults;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "train-exit", mixinStandardHelpOptions = true,
        description = "Trains AdaInfer's exit classifier (linear SVM on top prob, gap and the block, liblinear) on "
                + "calibration text with the dense model, picks the probe policy and decision threshold that save most "
                + "FLOPs at --target-agreement on held-out documents, and writes the artifact for --exit.")
public final class TrainExitCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Option(names = "--out", required = true, paramLabel = "PATH", description = "Artifact file to write (JSON).")
    Path out;

    @Option(names = "--calibration", paramLabel = "FILE",
            description = "Calibration text (default: ../shared/data/tinystories-train-sample.txt).")
    Path calibration;

    @Option(names = "--docs", defaultValue = "" + ExitTrainingDefaults.DOCUMENTS, description = "Calibration documents (default: ${DEFAULT-VALUE}).")
    int docs;

    @Option(names = "--max-len", defaultValue = "" + ExitTrainingDefaults.MAX_LEN, description = "Tokens per document (default: ${DEFAULT-VALUE}).")
    int maxLen;

    @Option(names = "--held-out", defaultValue = "0.25",
            description = "Share of the documents held out to choose the threshold and probe policy (default: ${DEFAULT-VALUE}).")
    double heldOut;

    @Option(names = "--target-agreement", defaultValue = "0.99",
            description = "Top-1 agreement with the dense model to keep on held-out text (default: ${DEFAULT-VALUE}).")
    double targetAgreement;

    @Option(names = "--c", defaultValue = "1", description = "SVM regularization C (default: ${DEFAULT-VALUE}).")
    double c;

    @Option(names = "--positive-weight", defaultValue = "0",
            description = "Class weight of positive examples (top-1 already final); 0 = balanced (default).")
    double positiveWeight;

    @Option(names = "--min-layer", defaultValue = "-1",
            description = "Force the first probed block (0-based); -1 = choose by measurement (default).")
    int minLayer;

    @Option(names = "--every", defaultValue = "0", description = "Force the probe stride; 0 = choose 1 or 2 by measurement (default).")
    int every;

    @Option(names = "--features", defaultValue = "adainfer",
            description = "Probe features: adainfer (top prob and gap, the paper's) or extended (also the top-1's streak "
                    + "over the probes and the block's saturation, both almost free). Default: ${DEFAULT-VALUE}.")
    String features;

    @Option(names = "--candidates", defaultValue = "0",
            description = "0 = every probe runs the whole LM head (default); K = a token's later probes score only its "
                    + "first probe's K best tokens, a fraction of the head's cost.")
    int candidates;

    @Option(names = "--per-block-thresholds",
            description = "After choosing the probe policy, give each probed block its own decision threshold, chosen "
                    + "greedily on the held-out documents for the most FLOPs at the target agreement (default: one "
                    + "threshold, AdaInfer's).")
    boolean perBlockThresholds;

    @Override
    public Integer call() throws Exception {
        Path text = calibration != null ? calibration : ModelPaths.sharedData("tinystories-train-sample.txt");
        var documents = Documents.read(text, modelOptions.tokenizer(), maxLen, docs);
        ExitTrainer.Result r;
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device());
                ProgressBar bar = Progress.bar("train-exit", documents.size())) {
            r = ExitTrainer.train(model, modelOptions.describeModel(), documents,
                    new ExitTrainer.Options(targetAgreement, heldOut, c, positiveWeight, minLayer, every,
                            featureKind(), candidates, perBlockThresholds), bar::stepTo,
                    msg -> System.err.println("train-exit: " + msg));
        }
        r.artifact().save(out);
        System.err.println("train-exit: " + r.artifact().training());
        System.out.println(out);
        return 0;
    }

    private ExitTrainer.Features featureKind() {
        switch (features) {
            case "adainfer":
                return ExitTrainer.Features.ADAINFER;
            case "extended":
                return ExitTrainer.Features.EXTENDED;
            default:
                throw new picocli.CommandLine.ParameterException(new picocli.CommandLine(this),
                        "--features must be adainfer or extended, got " + features);
        }
    }
}
