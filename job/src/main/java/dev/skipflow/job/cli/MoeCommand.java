package dev.skipflow.job.cli;

import dev.skipflow.job.options.ModelOptions;
import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.ModelSource;
import dev.skipflow.model.compression.CheckpointOutput;
import dev.skipflow.model.compression.moe.MoeOptions;
import dev.skipflow.model.compression.moe.ToMoe;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.spec.BlockSpec;
import dev.skipflow.model.weights.ModelWeights;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "moe", mixinStandardHelpOptions = true,
        description = {"Dense to mixture of experts (ToMoE): every MLP becomes --experts experts, each a set of its "
                + "channels, and a per-token top-1 router per block picks one; a hypernetwork (bidirectional GRU) makes "
                + "the expert masks, trained with the routers by KL to the dense model plus active-parameter, coverage "
                + "and load-balance terms; the model's weights stay frozen. Each expert then keeps --active-ratio of "
                + "its MLP's channels; channels no expert uses are removed.",
            "--baseline static: static MLP channel pruning at the same active parameters instead (LLM-Pruner's "
                    + "element1 importance, no recovery).",
            "Writes a compressed checkpoint folder (model.safetensors + skipflow.json, the tokenizer beside them) that "
                    + "every command loads with --model DIR; it serves deterministically (the router's argmax), and "
                    + "FLOPs saved count against the original dense model."})
public final class MoeCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Option(names = "--active-ratio", required = true, paramLabel = "P",
            description = "Share of each MLP's parameters a token runs, in (0, 1).")
    double activeRatio;

    @Option(names = "--experts", defaultValue = "8", paramLabel = "E", description = "Experts per MLP, at least 2 (default: ${DEFAULT-VALUE}).")
    int experts;

    @Option(names = "--baseline", paramLabel = "KIND", description = "static: MLP channel pruning at the same active parameters, instead of ToMoE.")
    String baseline;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Checkpoint folder to write.")
    Path out;

    @Option(names = "--force", description = "Replace --out if it is an existing checkpoint folder.")
    boolean force;

    @Option(names = "--steps", defaultValue = "1000", description = "Training steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--calibration", paramLabel = "FILE",
            description = "Calibration text, one document per line (default: ../shared/data/tinystories-train-sample.txt).")
    Path calibration;

    @Option(names = "--samples", defaultValue = "256", description = "Calibration documents to train on, and to "
            + "score the static baseline's importance on (default: ${DEFAULT-VALUE}).")
    int samples;

    @Option(names = "--sample-length", defaultValue = "64", description = "Tokens per calibration document (default: ${DEFAULT-VALUE}).")
    int sampleLength;

    @Option(names = "--batch", defaultValue = "4", description = "Documents per training step (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--lr", defaultValue = "1e-2", description = "AdamW learning rate (default: ${DEFAULT-VALUE}; the paper's 1e-3 is for 100k steps, this for a thousand).")
    float lr;

    @Option(names = "--shared", defaultValue = "0", paramLabel = "S", description = "Share of each expert's channels "
            + "common to all experts, in [0, 1): a shared expert of the channels with the highest element1 importance on "
            + "the calibration samples, run once per batch; the rest of each expert is learned (default: "
            + "${DEFAULT-VALUE}, ToMoE's own: every channel learned).")
    double shared;

    @Option(names = "--seed", defaultValue = "42", description = "Seed for samples, initialisation and Gumbel noise (default: ${DEFAULT-VALUE}).")
    long seed;

    @Override
    public Integer call() throws Exception {
        MoeOptions.Baseline kind = MoeOptions.Baseline.parse(baseline);
        MoeOptions d = MoeOptions.defaults(activeRatio, experts, steps, samples, sampleLength, batch, kind, seed);
        MoeOptions o = new MoeOptions(d.activeRatio(), d.experts(), d.steps(), d.samples(), d.sampleLength(),
                d.docsPerStep(), lr, d.weightDecay(), d.temperature(), d.offset(), d.lambda(), d.klWeight(),
                d.coverageWeight(), d.balanceWeight(), shared, kind, seed);
        CheckpointOutput.requireWritable(out, force);
        ModelSource source = modelOptions.source();
        for (int l = 0; l < source.spec().nLayers(); l++) {
            o.keptChannels(l, source.spec().block(l).mlpHidden()); // refuses an empty expert set before any work
        }
        ModelWeights input = modelOptions.weights();
        Path text = calibration != null ? calibration : ModelPaths.sharedData("tinystories-train-sample.txt");
        List<int[]> docs = Documents.read(text, modelOptions.tokenizer(), sampleLength, 0);
        Map<String, Object> extra = new LinkedHashMap<>();
        extra.put("calibration", text.toString());
        long start = System.nanoTime();
        ToMoe.Result r = ToMoe.run(input, docs, o, extra, modelOptions.device(), Progress::phase);
        double seconds = (System.nanoTime() - start) / 1e9;

        CheckpointOutput.write(source, input, r.weights(), r.step(), out, force, List.of());
        printSummary(input, r, o, seconds);
        return 0;
    }


    private void printSummary(ModelWeights input, ToMoe.Result r, MoeOptions o, double seconds) {
        long before = input.parameterCount();
        long after = r.weights().parameterCount();
        boolean moe = r.experts() != null;
        System.out.printf("%s %s, active ratio %s, in %.1f s -> %s%n",
                moe ? "ToMoE converted" : "static MLP channel pruning of", modelOptions.describeModel(), o.activeRatio(),
                seconds, out);
        System.out.printf("parameters stored: %,d -> %,d%n", before, after);
        if (moe) {
            if (o.shared() > 0) {
                System.out.println("shared: channels every expert of a block runs (element1 importance); the rest learned");
            }
            System.out.printf("training: %d steps, loss %.4f -> %.4f (last 10), KL to the dense model %.4f%s%n", o.steps(),
                    r.firstLoss(), r.lastLoss(), r.lastKl(),
                    r.skippedSteps() > 0 ? ", " + r.skippedSteps() + " non-finite steps dropped" : "");
            System.out.printf("%-6s %-" + sizeWidth(o) + "s %-10s %-8s %s%n", "block", "expert size", "kept", "trained",
                    "calibration load (tokens per expert)");
        } else {
            System.out.printf("%-6s %s%n", "block", "mlp channels");
        }
        for (int l = 0; l < input.spec().nLayers(); l++) {
            BlockSpec b = input.spec().block(l);
            BlockSpec now = r.weights().spec().block(l);
            if (moe) {
                int size = r.experts()[l][0].length;
                StringBuilder load = new StringBuilder();
                long total = 0;
                for (long t : r.load()[l]) {
                    total += t;
                }
                for (long t : r.load()[l]) {
                    load.append(String.format("%4.0f%% ", total == 0 ? 0.0 : 100.0 * t / total));
                }
                String sizes = size + "/" + b.mlpHidden() + (o.shared() > 0 ? " (" + o.sharedChannels(size) + " shared)" : "");
                System.out.printf("%-6d %-" + sizeWidth(o) + "s %-10s %-8s %s%n", l, sizes, now.mlpHidden() + "/" + b.mlpHidden(),
                        String.format("%.2f", r.trainedShare()[l]), load.toString().trim());
            } else {
                System.out.printf("%-6d %s%n", l, now.mlpHidden() + "/" + b.mlpHidden());
            }
        }
    }

    private static int sizeWidth(MoeOptions o) {
        return o.shared() > 0 ? 22 : 14;
    }
}
