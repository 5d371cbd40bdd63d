package dev.skipflow.model.compression;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The compression steps of a serving bundle, in the order they run: {@code prune:0.2,lowrank:0.7}. Parsed and checked
 * before any work starts, so a chain that cannot compose is refused in a second, not after the first step's minutes.
 *
 * <p>What composes follows from what each step needs: pruning cuts dense maps and gated MLPs, so it runs first;
 * ToMoE needs dense gated MLP maps and low rank dense gated blocks, so either may follow pruning but not each other
 * (low rank of an expert's channels is not built). Each method runs at most once.
 */
public record StackPlan(List<Step> steps) {

    /** A compression method of a stack, with the ratio option of its command. */
    public enum Method {
        /** LLM-Pruner: {@code ratio} = share of the pruned blocks' parameters removed. */
        PRUNE("prune", "--ratio"),
        /** SoftLMs: {@code ratio} = share of the linear maps' parameters kept. */
        LOWRANK("lowrank", "--params-ratio"),
        /** ToMoE: {@code ratio} = share of each MLP's parameters active per token. */
        MOE("moe", "--active-ratio");

        private final String command;
        private final String ratioOption;

        Method(String command, String ratioOption) {
            this.command = command;
            this.ratioOption = ratioOption;
        }

        /** The {@code ./skipflow} command that runs this step. */
        public String command() {
            return command;
        }

        /** That command's option taking the step's ratio. */
        public String ratioOption() {
            return ratioOption;
        }

        static Method parse(String name) {
            for (Method m : values()) {
                if (m.command.equals(name.trim().toLowerCase(Locale.ROOT))) {
                    return m;
                }
            }
            throw new IllegalArgumentException("unknown compression step '" + name + "': use prune, lowrank or moe");
        }
    }

    /** One step: a method and its ratio. */
    public record Step(Method method, double ratio) {

        /** The folder the step's checkpoint is written to inside the bundle, e.g. {@code steps/1-prune}. */
        public String folder(int index) {
            return "steps/" + (index + 1) + "-" + method.command();
        }

        @Override
        public String toString() {
            return method.command() + ":" + ratio;
        }
    }

    public StackPlan {
        steps = List.copyOf(steps);
    }

    /** Parses {@code method:ratio[,method:ratio...]} and refuses chains that cannot compose. */
    public static StackPlan parse(String text) {
        if (text == null || text.isBlank()) {
            throw new IllegalArgumentException("--steps needs at least one step, e.g. prune:0.2,lowrank:0.7");
        }
        List<Step> steps = new ArrayList<>();
        for (String part : text.split(",")) {
            String[] kv = part.trim().split(":");
            if (kv.length != 2) {
                throw new IllegalArgumentException("step '" + part.trim() + "' must be METHOD:RATIO, e.g. prune:0.2");
            }
            Method m = Method.parse(kv[0]);
            double ratio;
            try {
                ratio = Double.parseDouble(kv[1].trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("step '" + part.trim() + "': '" + kv[1].trim() + "' is not a number");
            }
            boolean ok = m == Method.LOWRANK ? ratio > 0 && ratio <= 1 : ratio > 0 && ratio < 1;
            if (!ok) {
                throw new IllegalArgumentException("step '" + part.trim() + "': the ratio must be in (0, 1"
                        + (m == Method.LOWRANK ? "]" : ")") + ", got " + ratio);
            }
            steps.add(new Step(m, ratio));
        }
        StackPlan plan = new StackPlan(steps);
        plan.check();
        return plan;
    }

    private void check() {
        for (int i = 0; i < steps.size(); i++) {
            Method m = steps.get(i).method();
            for (int j = 0; j < i; j++) {
                Method before = steps.get(j).method();
                if (before == m) {
                    throw new IllegalArgumentException(m.command() + " appears twice in --steps; give each method once");
                }
                if (m == Method.PRUNE) {
                    throw new IllegalArgumentException("prune must come first: it cuts dense maps and gated MLPs, which "
                            + before.command() + " leaves " + (before == Method.MOE ? "as experts" : "factored"));
                }
                if ((m == Method.MOE && before == Method.LOWRANK) || (m == Method.LOWRANK && before == Method.MOE)) {
                    throw new IllegalArgumentException("lowrank and moe do not compose: ToMoE needs dense MLP maps and "
                            + "low rank of an expert's channels is not built; choose one of them (after prune if you like)");
                }
            }
        }
    }

    @Override
    public String toString() {
        return String.join(",", steps.stream().map(Step::toString).toList());
    }
}
