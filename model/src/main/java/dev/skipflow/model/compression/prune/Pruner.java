package dev.skipflow.model.compression.prune;

import ai.djl.Device;
import dev.skipflow.model.compression.LoraRecovery;
import dev.skipflow.model.io.CompressedCheckpoint;
import dev.skipflow.model.spec.BlockSpec;
import dev.skipflow.model.spec.ModelSpec;
import dev.skipflow.model.training.RouterRecipe;
import dev.skipflow.model.weights.BlockWeights;
import dev.skipflow.model.weights.ModelWeights;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * LLM-Pruner (Ma et al., 2023) on one model: in the chosen blocks, score the coupled groups (KV heads with their
 * query heads, MLP channels) from gradients on a few calibration samples or by a baseline, remove the least
 * important ones physically so that each block loses the given share of its parameters ({@link PrunePlan}),
 * optionally in several steps, then optionally recover with LoRA, merged. The result is a smaller dense model whose
 * spec keeps the original's, so FLOPs saved are counted against it.
 */
public final class Pruner {

    /** What was kept in one block, as indices into the block it had before pruning. */
    public record Kept(int layer, int[] kvHeads, int[] channels) {}

    /**
     * @param weights the pruned (and recovered) model
     * @param plan the kept widths per pruned block
     * @param kept per pruned block, which KV heads and channels remain
     * @param recovery LoRA's outcome; null without recovery
     * @param step the compression step for the checkpoint's manifest
     */
    public record Result(ModelWeights weights, PrunePlan plan, List<Kept> kept, LoraRecovery.Result recovery,
            CompressedCheckpoint.Step step) {}

    private Pruner() {}

    /**
     * @param calibration documents to draw importance samples from (tokenized; at least {@code sampleLength} long
     *     preferred)
     * @param recoveryDocs documents LoRA trains on (unused without recovery)
     * @param extraSettings recorded in the manifest beside the options (e.g. the calibration text's path)
     */
    public static Result run(ModelWeights input, List<int[]> calibration, List<int[]> recoveryDocs, PruneOptions o,
            Map<String, Object> extraSettings, Device device, RouterRecipe.Phases phases) {
        ModelSpec spec = input.spec();
        int[] range = o.firstBlock() == null ? PruneOptions.defaultRange(spec.nLayers())
                : new int[] {o.firstBlock(), o.lastBlock()};
        PruneOptions.requireRange(range[0], range[1], spec.nLayers());
        List<Integer> layers = new ArrayList<>();
        for (int l = range[0]; l <= range[1]; l++) {
            GroupImportance.requireDenseGated(input.blocks().get(l), l);
            layers.add(l);
        }
        PrunePlan plan = PrunePlan.of(spec, layers, o.ratio(), o.roundTo()); // refuses a bad ratio before any work
        List<int[]> samples = o.importance().usesCalibration()
                ? dev.skipflow.model.compression.Calibration.samples(calibration, o.samples(), o.sampleLength(), o.seed())
                : List.of();
        // kept[l] maps the current block's groups and channels to the original's
        Map<Integer, int[]> keptKv = new LinkedHashMap<>();
        Map<Integer, int[]> keptChannels = new LinkedHashMap<>();
        for (int l : layers) {
            keptKv.put(l, range(spec.block(l).kvHeads()));
            keptChannels.put(l, range(spec.block(l).mlpHidden()));
        }
        ModelWeights current = input;
        int sampleWork = GroupImportance.work(spec, layers, o.importance(), samples.size());
        try (RouterRecipe.Phase phase = phases.open("importance (" + o.importance().label() + ")",
                sampleWork * o.iterativeSteps())) {
            for (int s = 1; s <= o.iterativeSteps(); s++) {
                double r = o.ratio() * s / o.iterativeSteps();
                int offset = (s - 1) * sampleWork;
                phase.status("step " + s + " of " + o.iterativeSteps() + ", ratio " + String.format("%.3f", r));
                List<GroupImportance.BlockScores> scores = GroupImportance.estimate(current, layers, o.importance(),
                        o.aggregation(), samples, device, o.seed() + s, done -> phase.accept(offset + done));
                phase.accept(s * sampleWork);
                // a global plan is of the original blocks: a block already cut has its scores placed back at
                // their original indices, what is gone below everything left; prune() never widens a block
                PrunePlan stepPlan = o.global() ? globalPlan(spec, layers, r, o.roundTo(), scores, keptKv, keptChannels)
                        : s == o.iterativeSteps() ? plan : PrunePlan.of(spec, layers, r, o.roundTo());
                if (s == o.iterativeSteps()) {
                    plan = stepPlan;
                }
                current = prune(current, scores, stepPlan, keptKv, keptChannels);
            }
        }
        if (o.global()) { // what each block kept in the end (a step never widens a block)
            int[] kv = new int[layers.size()];
            int[] ch = new int[layers.size()];
            for (int i = 0; i < layers.size(); i++) {
                kv[i] = keptKv.get(layers.get(i)).length;
                ch[i] = keptChannels.get(layers.get(i)).length;
            }
            plan = PrunePlan.ofWidths(spec, layers, o.ratio(), o.roundTo(), kv, ch);
        }
        LoraRecovery.Result recovery = null;
        if (o.recovery().steps() > 0) {
            try (RouterRecipe.Phase phase = phases.open("LoRA recovery", o.recovery().steps())) {
                recovery = LoraRecovery.recover(current, recoveryDocs, o.recovery(), device, phase,
                        o.distillWeight() > 0 ? input : null, o.distillWeight());
            }
            current = recovery.merged();
        }
        List<Kept> kept = new ArrayList<>();
        for (int l : layers) {
            kept.add(new Kept(l, keptKv.get(l), keptChannels.get(l)));
        }
        return new Result(current, plan, kept, recovery, step(o, range, plan, kept, recovery, input, current,
                extraSettings));
    }

    /** The global plan for one step, from the current blocks' scores placed at their original indices. */
    private static PrunePlan globalPlan(ModelSpec original, List<Integer> layers, double ratio, int roundTo,
            List<GroupImportance.BlockScores> scores, Map<Integer, int[]> keptKv, Map<Integer, int[]> keptChannels) {
        List<double[]> groups = new ArrayList<>();
        List<double[]> channels = new ArrayList<>();
        for (GroupImportance.BlockScores sc : scores) {
            BlockSpec b = original.block(sc.layer());
            groups.add(spread(sc.groups(), keptKv.get(sc.layer()), b.kvHeads()));
            channels.add(spread(sc.channels(), keptChannels.get(sc.layer()), b.mlpHidden()));
        }
        return PrunePlan.global(original, layers, ratio, roundTo, groups, channels);
    }

    /** Current scores at their original indices; what was removed scores below everything that remains. */
    private static double[] spread(double[] current, int[] originalIndex, int width) {
        double min = Double.POSITIVE_INFINITY;
        for (double v : current) {
            min = Math.min(min, v);
        }
        double[] out = new double[width];
        java.util.Arrays.fill(out, min - 1 - Math.abs(min));
        for (int i = 0; i < current.length; i++) {
            out[originalIndex[i]] = current[i];
        }
        return out;
    }

    /** One pruning step: each block down to the plan's widths (never wider than it already is). */
    private static ModelWeights prune(ModelWeights w, List<GroupImportance.BlockScores> scores, PrunePlan plan,
            Map<Integer, int[]> keptKv, Map<Integer, int[]> keptChannels) {
        ModelSpec spec = w.spec();
        List<BlockWeights> blocks = new ArrayList<>(w.blocks());
        for (int i = 0; i < scores.size(); i++) {
            GroupImportance.BlockScores sc = scores.get(i);
            PrunePlan.Block target = plan.blocks().get(i);
            int l = sc.layer();
            BlockSpec b = spec.block(l);
            int kv = Math.min(target.keptKvHeads(), b.kvHeads());
            int ch = Math.min(target.keptChannels(), b.mlpHidden());
            int[] kvIdx = GroupRemoval.top(sc.groups(), kv);
            int[] chIdx = GroupRemoval.top(sc.channels(), ch);
            blocks.set(l, GroupRemoval.keep(w.blocks().get(l), b, spec.headSize(), kvIdx, chIdx));
            keptKv.put(l, compose(keptKv.get(l), kvIdx));
            keptChannels.put(l, compose(keptChannels.get(l), chIdx));
        }
        return w.withBlocks(blocks);
    }

    private static int[] compose(int[] previous, int[] kept) {
        int[] out = new int[kept.length];
        for (int i = 0; i < kept.length; i++) {
            out[i] = previous[kept[i]];
        }
        return out;
    }

    private static int[] range(int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) {
            r[i] = i;
        }
        return r;
    }

    private static CompressedCheckpoint.Step step(PruneOptions o, int[] range, PrunePlan plan, List<Kept> kept,
            LoraRecovery.Result recovery, ModelWeights before, ModelWeights after, Map<String, Object> extra) {
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("ratio", o.ratio());
        s.put("importance", o.importance().label());
        s.put("aggregation", o.aggregation().label());
        s.put("blocks", range[0] + "-" + range[1]);
        s.put("samples", o.importance().usesCalibration() ? o.samples() : 0);
        s.put("sampleLength", o.sampleLength());
        s.put("roundTo", o.roundTo());
        s.put("iterativeSteps", o.iterativeSteps());
        s.put("global", o.global());
        s.put("seed", o.seed());
        s.putAll(extra);
        Map<String, Object> lora = new LinkedHashMap<>();
        lora.put("steps", o.recovery().steps());
        if (o.recovery().steps() > 0) {
            lora.put("rank", o.recovery().rank());
            lora.put("alpha", o.recovery().alpha());
            lora.put("dropout", o.recovery().dropout());
            lora.put("learningRate", o.recovery().learningRate());
            lora.put("docsPerStep", o.recovery().docsPerStep());
            lora.put("targets", List.of("wq", "wk", "wv", "wo", "w1", "w3", "w2"));
            lora.put("merged", true);
            lora.put("objective", o.distillWeight() == 0 ? "next-token" : o.distillWeight() == 1 ? "distill" : "mixed");
            if (o.distillWeight() > 0 && o.distillWeight() < 1) {
                lora.put("distillWeight", o.distillWeight());
            }
            lora.put("firstLoss", recovery.firstLoss());
            lora.put("lastLoss", recovery.lastLoss());
            lora.put("skippedSteps", recovery.skippedSteps());
        }
        s.put("recovery", lora);
        s.put("parametersBefore", before.parameterCount());
        s.put("parametersAfter", after.parameterCount());
        s.put("prunedBlocksRemovedShare", plan.removedShare());
        List<Map<String, Object>> blocks = new ArrayList<>();
        for (int i = 0; i < kept.size(); i++) {
            PrunePlan.Block b = plan.blocks().get(i);
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("block", b.layer());
            m.put("keptKvHeads", kept.get(i).kvHeads());
            m.put("heads", b.keptHeads() + "/" + b.heads());
            m.put("mlpChannels", b.keptChannels() + "/" + b.channels());
            m.put("removedShare", b.removedShare());
            blocks.add(m);
        }
        s.put("perBlock", blocks);
        return new CompressedCheckpoint.Step("prune", s);
    }
}
