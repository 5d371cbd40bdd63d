package dev.skipflow.job.cli;

import dev.skipflow.job.options.ModelOptions;
import dev.skipflow.model.ModelSource;
import dev.skipflow.model.ShippedArtifacts;
import dev.skipflow.model.compression.StackBuilder;
import dev.skipflow.model.compression.StackPlan;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "stack", mixinStandardHelpOptions = true,
        description = {"Builds a serving bundle in one command: the compression --steps in the order given (prune, "
                + "lowrank, moe, each with its command's defaults and its --<step>-args), then, on the compressed model, "
                + "a router (--router) and an exit classifier (--exit).",
            "The bundle DIR is a checkpoint folder that every command loads with --model DIR; job and demo also serve "
                    + "its router.json and exit.json unless told otherwise (--dense, --router, --exit). Each step's "
                    + "checkpoint stays in DIR/steps/N-method (its manifest continues the chain back to the original "
                    + "model); DIR/stack.json records how the bundle was built. Nothing is written until the whole "
                    + "bundle is built.",
            "What composes: prune first; then lowrank or moe (not both: ToMoE needs dense MLP maps).",
            "Example: ./skipflow stack --model ../shared/models/stories-deep16/stories-deep16.bin "
                    + "--steps prune:0.2,lowrank:0.8 --router 0.2 --exit --out target/deep16-stack"})
public final class StackCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Option(names = "--steps", required = true, paramLabel = "M:R[,M:R...]",
            description = "Compression steps in order: prune:R (share of the pruned blocks' parameters removed), "
                    + "lowrank:P (share of the linear parameters kept), moe:P (share of each MLP's parameters active).")
    String steps;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Bundle folder to write.")
    Path out;

    @Option(names = "--force", description = "Replace --out if it is an existing checkpoint folder.")
    boolean force;

    @Option(names = "--router", arity = "0..1", fallbackValue = "0.2", paramLabel = "SPARSITY",
            description = "Train a router for the compressed model at this token-block sparsity (default when given "
                    + "without a value: ${FALLBACK-VALUE}).")
    Double router;

    @Option(names = "--exit", description = "Train an exit classifier for the compressed model.")
    boolean exit;

    @Option(names = "--calibration", paramLabel = "FILE",
            description = "Calibration text for every step and for training (default: each command's, "
                    + "../shared/data/tinystories-train-sample.txt).")
    Path calibration;

    @Option(names = "--prune-args", parameterConsumer = RawValue.class, paramLabel = "\"ARGS\"",
            description = "Further options of the prune step, as one string, e.g. \"--recover-steps 50 --importance l2\".")
    String pruneArgs;

    @Option(names = "--lowrank-args", parameterConsumer = RawValue.class, paramLabel = "\"ARGS\"", description = "Further options of the lowrank step.")
    String lowrankArgs;

    @Option(names = "--moe-args", parameterConsumer = RawValue.class, paramLabel = "\"ARGS\"", description = "Further options of the moe step.")
    String moeArgs;

    @Option(names = "--router-args", parameterConsumer = RawValue.class, paramLabel = "\"ARGS\"",
            description = "Further options of train-router, e.g. \"--route prompt --steps 200\".")
    String routerArgs;

    @Option(names = "--exit-args", parameterConsumer = RawValue.class, paramLabel = "\"ARGS\"",
            description = "Further options of train-exit, e.g. \"--target-agreement 0.98\".")
    String exitArgs;

    private static final String SYNTHETIC = "synthetic:";

    /** Takes the next argument as the value whatever it looks like: {@code --prune-args "--recover-steps 50"}. */
    static final class RawValue implements picocli.CommandLine.IParameterConsumer {
        @Override
        public void consumeParameters(java.util.Stack<String> args, picocli.CommandLine.Model.ArgSpec argSpec,
                picocli.CommandLine.Model.CommandSpec commandSpec) {
            if (args.isEmpty()) {
                throw new picocli.CommandLine.ParameterException(commandSpec.commandLine(),
                        "Missing the value of " + ((picocli.CommandLine.Model.OptionSpec) argSpec).longestName());
            }
            argSpec.setValue(args.pop());
        }
    }

    /** Options the stack sets itself, refused in --*-args. */
    private static final Set<String> RESERVED = Set.of("--model", "--out", "--force", "--synthetic", "--tokenizer");

    @Override
    public Integer call() {
        StackPlan plan = StackPlan.parse(steps);
        if (router != null && !(router > 0 && router < 1)) {
            throw new IllegalArgumentException("--router sparsity must be in (0, 1), got " + router);
        }
        Map<StackPlan.Method, List<String>> stepArgs = new LinkedHashMap<>();
        stepArgs.put(StackPlan.Method.PRUNE, split("--prune-args", pruneArgs, StackPlan.Method.PRUNE.ratioOption()));
        stepArgs.put(StackPlan.Method.LOWRANK, split("--lowrank-args", lowrankArgs,
                StackPlan.Method.LOWRANK.ratioOption()));
        stepArgs.put(StackPlan.Method.MOE, split("--moe-args", moeArgs, StackPlan.Method.MOE.ratioOption()));
        List<String> routerExtra = split("--router-args", routerArgs, "--sparsity");
        List<String> exitExtra = split("--exit-args", exitArgs, null);
        for (StackPlan.Method m : StackPlan.Method.values()) {
            if (!stepArgs.get(m).isEmpty() && plan.steps().stream().noneMatch(s -> s.method() == m)) {
                throw new IllegalArgumentException("--" + m.command() + "-args given but --steps has no " + m.command());
            }
        }
        if (router == null && !routerExtra.isEmpty()) {
            throw new IllegalArgumentException("--router-args given without --router");
        }
        if (!exit && !exitExtra.isEmpty()) {
            throw new IllegalArgumentException("--exit-args given without --exit");
        }
        ModelSource source = modelOptions.source();
        Path input = source.synthetic() != null ? Path.of(SYNTHETIC + source.synthetic())
                : source.modelPath().toAbsolutePath().normalize();
        long before = source.loadWeights().parameterCount(); // not kept: each part loads the model itself

        // the command line of each part, built once for the check and for the run
        Parts parts = new Parts(source, input, stepArgs, routerExtra, exitExtra);
        StackBuilder.StepRunner runStep = (step, from, to) -> run(parts.step(step, from, to), "step " + step);
        StackBuilder.ArtifactTrainer trainRouter = router == null ? null
                : (model, artifact) -> run(parts.router(model, artifact), "train-router");
        StackBuilder.ArtifactTrainer trainExit = !exit ? null
                : (model, artifact) -> run(parts.exit(model, artifact), "train-exit");
        // every part's command line parses before any work starts (a typo in --prune-args fails now, not in an hour)
        Path probe = Path.of("stack-probe");
        for (int i = 0; i < plan.steps().size(); i++) {
            StackPlan.Step step = plan.steps().get(i);
            parses(parts.step(step, i == 0 ? input : probe, probe), "--" + step.method().command() + "-args");
        }
        if (router != null) {
            parses(parts.router(probe, probe), "--router-args");
        }
        if (exit) {
            parses(parts.exit(probe, probe), "--exit-args");
        }
        Map<String, Object> settings = new LinkedHashMap<>();
        settings.put("model", modelOptions.describeModel());
        for (StackPlan.Step s : plan.steps()) {
            settings.put(s.method().command() + "Args", stepArgs.get(s.method()));
        }
        if (router != null) {
            settings.put("routerSparsity", router);
            settings.put("routerArgs", routerExtra);
        }
        if (exit) {
            settings.put("exitArgs", exitExtra);
        }
        if (calibration != null) {
            settings.put("calibration", calibration.toAbsolutePath().toString());
        }
        StackBuilder.Result r = StackBuilder.build(input, plan, out, force, runStep, trainRouter, trainExit, settings,
                line -> System.err.println("skipflow stack: " + line));
        long after = new ModelSource(r.bundle().toString(), null, null, source.device()).loadWeights().parameterCount();
        System.out.printf("stack %s of %s -> %s%n", plan, modelOptions.describeModel(), r.bundle());
        for (StackBuilder.Part p : r.parts()) {
            System.out.printf("  %-16s %-14s %8.1f s%n", p.name(), p.what(), p.seconds());
        }
        System.out.printf("parameters: %,d -> %,d (%.1f%% removed)%n", before, after, 100.0 * (before - after) / before);
        ShippedArtifacts.Found found = ShippedArtifacts.inBundle(r.bundle());
        System.out.printf("serve it: ./skipflow job --model %s --bootstrap-servers HOST:PORT (or demo --model %s)%s%n",
                r.bundle(), r.bundle(), found.any() ? "; its router and exit classifier are used unless --dense" : "");
        System.out.printf("measure it: ./skipflow eval --model %s --original%s%s --protocol serving --text FILE%n", r.bundle(),
                found.router() != null ? " --router " + found.router() : "",
                found.exit() != null ? " --exit " + found.exit() : "");
        return 0;
    }

    /** The command lines of the stack's parts. */
    private final class Parts {
        private final ModelSource source;
        private final Path input;
        private final Map<StackPlan.Method, List<String>> stepArgs;
        private final List<String> routerExtra;
        private final List<String> exitExtra;

        Parts(ModelSource source, Path input, Map<StackPlan.Method, List<String>> stepArgs, List<String> routerExtra,
                List<String> exitExtra) {
            this.source = source;
            this.input = input;
            this.stepArgs = stepArgs;
            this.routerExtra = routerExtra;
            this.exitExtra = exitExtra;
        }

        List<String> step(StackPlan.Step step, Path from, Path to) {
            List<String> args = new ArrayList<>(List.of(step.method().command()));
            args.addAll(modelArgs(source, from, from.equals(input)));
            args.addAll(List.of(step.method().ratioOption(), Double.toString(step.ratio()), "--out", to.toString()));
            calibrationArg(args);
            args.addAll(stepArgs.get(step.method()));
            return args;
        }

        List<String> router(Path model, Path artifact) {
            List<String> args = new ArrayList<>(List.of("train-router"));
            args.addAll(modelArgs(source, model, false));
            args.addAll(List.of("--sparsity", Double.toString(router), "--out", artifact.toString()));
            calibrationArg(args);
            args.addAll(routerExtra);
            return args;
        }

        List<String> exit(Path model, Path artifact) {
            List<String> args = new ArrayList<>(List.of("train-exit"));
            args.addAll(modelArgs(source, model, false));
            args.addAll(List.of("--out", artifact.toString()));
            calibrationArg(args);
            args.addAll(exitExtra);
            return args;
        }
    }

    /** The model options of a part: the stack's own for the first step, the previous checkpoint after. */
    private static List<String> modelArgs(ModelSource source, Path model, boolean original) {
        List<String> args = new ArrayList<>();
        if (original && source.synthetic() != null) {
            args.addAll(List.of("--synthetic", source.synthetic()));
        } else {
            args.addAll(List.of("--model", model.toString()));
        }
        if (original && source.tokenizer() != null) {
            // later checkpoints carry a copy of it
            args.addAll(List.of("--tokenizer", source.tokenizer()));
        }
        if (source.device() != null) {
            args.addAll(List.of("--device", source.device()));
        }
        return args;
    }

    private void calibrationArg(List<String> args) {
        if (calibration != null) {
            args.addAll(List.of("--calibration", calibration.toString()));
        }
    }

    private static void run(List<String> args, String what) {
        System.err.println("skipflow stack: ./skipflow " + String.join(" ", args));
        int rc = SkipflowCli.execute(args.toArray(String[]::new));
        if (rc != 0) {
            throw new IllegalArgumentException(what + " failed (exit " + rc + ", above); no bundle written");
        }
    }

    /** Refuses a part's command line that its command would not parse. */
    private static void parses(List<String> args, String option) {
        try {
            new picocli.CommandLine(new SkipflowCli()).parseArgs(args.toArray(String[]::new));
        } catch (picocli.CommandLine.ParameterException e) {
            throw new IllegalArgumentException(option + ": " + args.get(0) + " would not accept it: " + e.getMessage());
        }
    }

    /** Splits {@code --x-args} on whitespace, refusing the options the stack sets itself. */
    private static List<String> split(String option, String text, String ownRatio) {
        if (text == null || text.isBlank()) {
            return List.of();
        }
        List<String> args = Arrays.asList(text.trim().split("\\s+"));
        for (String a : args) {
            String name = a.contains("=") ? a.substring(0, a.indexOf('=')) : a;
            if (RESERVED.contains(name) || name.equals(ownRatio) || name.equals("--device")
                    || name.equals("--calibration")) {
                throw new IllegalArgumentException(option + " may not set " + name + ": the stack sets it (--steps, "
                        + "--router, --out, the stack's own --model, --device and --calibration)");
            }
        }
        return args;
    }
}
