package dev.skipflow.job.cli;

import dev.skipflow.job.options.ModelOptions;
import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.ModelSource;
import dev.skipflow.model.compression.CheckpointOutput;
import dev.skipflow.model.compression.LoraRecovery;
import dev.skipflow.model.compression.prune.Aggregation;
import dev.skipflow.model.compression.prune.Importance;
import dev.skipflow.model.compression.prune.PruneOptions;
import dev.skipflow.model.compression.prune.PrunePlan;
import dev.skipflow.model.compression.prune.Pruner;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.weights.ModelWeights;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "prune", mixinStandardHelpOptions = true,
        description = {"Structural pruning (LLM-Pruner): in the pruned blocks, remove the least important coupled groups "
                + "-- a KV head with its query heads (q/k/v rows, o columns), an MLP channel (gate and up rows, down "
                + "column) -- so each block loses --ratio of its parameters; then, with --recover-steps, train LoRA "
                + "adapters on calibration text and merge them into the weights.",
            "Importance: element1 = sum |W * dL/dW| (default), element2 = sum W^2 * mean(g^2) (Fisher), vector = per "
                    + "channel |sum W * dL/dW|, from the next-token loss of --samples calibration samples; l1, l2, "
                    + "random are baselines without gradients.",
            "Writes a compressed checkpoint folder (model.safetensors + skipflow.json, the tokenizer beside them) that "
                    + "every command loads with --model DIR; FLOPs saved count against the original model."})
public final class PruneCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Option(names = "--ratio", required = true, description = "Share of the pruned blocks' parameters to remove, in (0, 1).")
    double ratio;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Checkpoint folder to write.")
    Path out;

    @Option(names = "--force", description = "Replace --out if it is an existing checkpoint folder.")
    boolean force;

    @Option(names = "--importance", defaultValue = "element1", paramLabel = "KIND",
            description = "element1, element2, vector, l1, l2, random, or ablation (each group's exact loss change on the "
                    + "calibration samples, one forward pass per group: slow on large models) (default: ${DEFAULT-VALUE}).")
    String importance;

    @Option(names = "--aggregation", defaultValue = "sum", paramLabel = "HOW",
            description = "How a group's matrices' scores combine: sum, mean, max, prod or last (o, down) "
                    + "(default: ${DEFAULT-VALUE}).")
    String aggregation;

    @Option(names = "--blocks", paramLabel = "A-B",
            description = "Blocks to prune, inclusive, 0-based, or 'all' (default: LLaMA-7B's 4-29 of 32 scaled to the "
                    + "model: the first 1/8 and last 1/16 stay dense, at least one each; 1-3 of 5, 2-14 of 16).")
    String blocks;

    @Option(names = "--round-to", defaultValue = "8", paramLabel = "M",
            description = "Kept MLP widths (and query widths) are multiples of M; heads go by whole KV groups, rounded "
                    + "to the nearest (default: ${DEFAULT-VALUE}).")
    int roundTo;

    @Option(names = "--global",
            description = "Rank KV groups, and MLP channels, across all pruned blocks (LLM-Pruner's global threshold): "
                    + "together they lose --ratio, each block what its scores say, at least one chunk of --round-to "
                    + "kept per block. Default: every pruned block loses --ratio.")
    boolean global;

    @Option(names = "--iterative-steps", defaultValue = "1",
            description = "Prune in N steps of ratio/N, re-estimating importance before each (default: ${DEFAULT-VALUE}, one shot).")
    int iterativeSteps;

    @Option(names = "--calibration", paramLabel = "FILE",
            description = "Calibration text, one document per line (default: ../shared/data/tinystories-train-sample.txt).")
    Path calibration;

    @Option(names = "--samples", defaultValue = "10", description = "Calibration samples for gradients (default: ${DEFAULT-VALUE}).")
    int samples;

    @Option(names = "--sample-length", defaultValue = "64", description = "Tokens per calibration sample (default: ${DEFAULT-VALUE}).")
    int sampleLength;

    @Option(names = "--recover-steps", defaultValue = "0",
            description = "LoRA recovery steps after pruning; 0 = none (default: ${DEFAULT-VALUE}).")
    int recoverSteps;

    @Option(names = "--recover-batch", defaultValue = "4", description = "Documents per recovery step (default: ${DEFAULT-VALUE}).")
    int recoverBatch;

    @Option(names = "--recover-max-len", defaultValue = "128",
            description = "Tokens per recovery document (default: ${DEFAULT-VALUE}).")
    int recoverMaxLen;

    @Option(names = "--recover-objective", defaultValue = "next-token", paramLabel = "next-token|distill|mixed",
            description = "What LoRA recovery learns: the calibration text's next tokens (LLM-Pruner), the unpruned "
                    + "model's next-token distributions, KL(original || pruned), or both, weighted by "
                    + "--distill-weight (default: ${DEFAULT-VALUE}).")
    String recoverObjective;

    @Option(names = "--distill-weight", defaultValue = "0.5",
            description = "With --recover-objective mixed: the KL's weight, the next-token loss taking the rest "
                    + "(default: ${DEFAULT-VALUE}).")
    double distillWeight;

    @Option(names = "--lora-rank", defaultValue = "8", description = "LoRA rank (default: ${DEFAULT-VALUE}).")
    int loraRank;

    @Option(names = "--lora-alpha", defaultValue = "16", description = "LoRA alpha; the update is scaled by alpha/rank (default: ${DEFAULT-VALUE}).")
    float loraAlpha;

    @Option(names = "--lora-dropout", defaultValue = "0.05", description = "Dropout on the adapters' inputs (default: ${DEFAULT-VALUE}).")
    float loraDropout;

    @Option(names = "--lora-lr", defaultValue = "5e-4", description = "Adam learning rate for the adapters (default: ${DEFAULT-VALUE}).")
    float loraLr;

    @Option(names = "--seed", defaultValue = "42", description = "Seed for samples, random importance and LoRA (default: ${DEFAULT-VALUE}).")
    long seed;

    @Override
    public Integer call() throws Exception {
        CheckpointOutput.requireWritable(out, force);
        LoraRecovery.Options lora = new LoraRecovery.Options(recoverSteps, loraRank, loraAlpha, loraDropout, loraLr,
                recoverBatch, seed);
        ModelSource source = modelOptions.source();
        int layers = source.spec().nLayers();
        int[] range = blocks == null ? null : PruneOptions.parseRange(blocks, layers);
        PruneOptions o = new PruneOptions(ratio, Importance.parse(importance), Aggregation.parse(aggregation),
                range == null ? null : range[0], range == null ? null : range[1], samples, sampleLength, roundTo,
                iterativeSteps, seed, lora, global, distill());
        if (recoverMaxLen < 2) {
            throw new IllegalArgumentException("--recover-max-len must be at least 2, got " + recoverMaxLen);
        }
        ModelWeights input = modelOptions.weights();
        Path text = calibration != null ? calibration : ModelPaths.sharedData("tinystories-train-sample.txt");
        boolean needText = o.importance().usesCalibration() || recoverSteps > 0;
        List<int[]> docs = needText ? Documents.read(text, modelOptions.tokenizer(), Math.max(sampleLength, recoverMaxLen), 0)
                : List.of();
        List<int[]> recoveryDocs = docs.stream().map(d -> d.length > recoverMaxLen ? Arrays.copyOf(d, recoverMaxLen) : d)
                .toList();
        Map<String, Object> extra = new LinkedHashMap<>();
        if (needText) {
            extra.put("calibration", text.toString());
        }
        if (recoverSteps > 0) {
            extra.put("recoverMaxLen", recoverMaxLen);
        }
        long start = System.nanoTime();
        Pruner.Result r = Pruner.run(input, docs, recoveryDocs, o, extra, modelOptions.device(), Progress::phase);
        double seconds = (System.nanoTime() - start) / 1e9;

        CheckpointOutput.write(source, input, r.weights(), r.step(), out, force, List.of());
        printSummary(input, r, seconds);
        return 0;
    }

    private double distill() {
        return switch (recoverObjective) {
            case "next-token" -> 0;
            case "distill" -> 1;
            case "mixed" -> {
                if (!(distillWeight > 0 && distillWeight < 1)) {
                    throw new IllegalArgumentException("--distill-weight must be in (0, 1), got " + distillWeight);
                }
                yield distillWeight;
            }
            default -> throw new IllegalArgumentException("--recover-objective must be next-token, distill or mixed, got "
                    + recoverObjective);
        };
    }


    private void printSummary(ModelWeights input, Pruner.Result r, double seconds) {
        PrunePlan p = r.plan();
        long before = input.parameterCount();
        long after = r.weights().parameterCount();
        System.out.printf("pruned %s with %s importance (%s), ratio %s, in %.1f s -> %s%n", modelOptions.describeModel(),
                importance, aggregation, ratio, seconds, out);
        System.out.printf("parameters: %,d -> %,d (%.1f%% of the model removed; %.1f%% of the pruned blocks' %,d)%n",
                before, after, 100.0 * (before - after) / before, 100 * p.removedShare(), p.parameters());
        System.out.printf("%-6s %-9s %-10s %-13s %s%n", "block", "heads", "kv heads", "mlp channels", "removed");
        for (int l = 0; l < input.spec().nLayers(); l++) {
            var b = input.spec().block(l);
            var now = r.weights().spec().block(l);
            String removed = "dense";
            for (PrunePlan.Block x : p.blocks()) {
                if (x.layer() == l) {
                    removed = String.format("%.1f%%", 100 * x.removedShare());
                }
            }
            System.out.printf("%-6d %-9s %-10s %-13s %s%n", l, now.heads() + "/" + b.heads(), now.kvHeads() + "/" + b.kvHeads(),
                    now.mlpHidden() + "/" + b.mlpHidden(), removed);
        }
        if (r.recovery() != null) {
            System.out.printf("LoRA recovery: %d steps, loss %.4f -> %.4f (last 10 steps), merged into the weights%s%n",
                    recoverSteps, r.recovery().firstLoss(), r.recovery().lastLoss(),
                    r.recovery().skippedSteps() > 0 ? ", " + r.recovery().skippedSteps() + " non-finite steps dropped" : "");
        }
    }
}
