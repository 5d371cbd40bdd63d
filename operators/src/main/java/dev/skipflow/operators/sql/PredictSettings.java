package dev.skipflow.operators.sql;

import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.ModelSource;
import dev.skipflow.model.ShippedArtifacts;
import dev.skipflow.model.exit.ExitArtifact;
import dev.skipflow.model.io.ModelFormatException;
import dev.skipflow.model.io.ModelLoader;
import dev.skipflow.model.routing.RouterArtifact;
import dev.skipflow.model.routing.RouterSpec;
import dev.skipflow.model.sampling.SamplingParams;
import dev.skipflow.model.spec.ModelSpec;
import dev.skipflow.model.weights.Fingerprint;
import dev.skipflow.operators.internal.EngineSlot;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Supplier;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeFamily;

/**
 * A skipflow model's settings as checked at planning time, small and serializable so they travel to the task
 * managers: paths made absolute, the router and exit artifacts read (and refused when trained for another model),
 * and where each output column comes from.
 *
 * @param source the model and tokenizer, resolved
 * @param maxTokens max-tokens of every row, as are temperature and topP
 * @param router the router artifact, or null
 * @param exit the exit-classifier artifact, or null
 * @param columns the model's output columns, in its OUTPUT order
 */
public record PredictSettings(ModelSource source, int maxTokens, float temperature, float topP, int maxBatch,
        int maxContext, int engineThreads, RouterSpec router, ExitArtifact exit, List<PredictColumn> columns)
        implements Serializable {

    /** Highest temperature accepted, as for prompt records (DESIGN §4). */
    static final double MAX_TEMPERATURE = 10;

    /**
     * Checks a model's options and schemas; each problem is a {@link ValidationException} naming the option or
     * column and the model.
     */
    static PredictSettings of(ReadableConfig options, ResolvedSchema input, ResolvedSchema output, String modelName) {
        String where = " (model " + modelName + ")";
        checkInput(input, where);
        List<PredictColumn> columns = outputColumns(output, where);

        int maxTokens = options.get(SkipflowModelOptions.MAX_TOKENS);
        require(maxTokens >= 1, SkipflowModelOptions.MAX_TOKENS, "must be at least 1, got " + maxTokens, where);
        double temperature = options.get(SkipflowModelOptions.TEMPERATURE);
        require(temperature >= 0 && temperature <= MAX_TEMPERATURE, SkipflowModelOptions.TEMPERATURE,
                "must be a number from 0 to " + (int) MAX_TEMPERATURE + ", got " + temperature, where);
        double topP = options.get(SkipflowModelOptions.TOP_P);
        require(topP > 0 && topP <= 1, SkipflowModelOptions.TOP_P, "must be in (0, 1], got " + topP, where);
        int maxBatch = options.get(SkipflowModelOptions.MAX_BATCH);
        require(maxBatch >= 1, SkipflowModelOptions.MAX_BATCH, "must be at least 1, got " + maxBatch, where);
        int maxContext = options.get(SkipflowModelOptions.MAX_CONTEXT);
        require(maxContext >= 0, SkipflowModelOptions.MAX_CONTEXT, "must be 0 (the model's) or positive, got " + maxContext,
                where);
        int engineThreads = options.get(SkipflowModelOptions.ENGINE_THREADS);
        require(engineThreads >= 0, SkipflowModelOptions.ENGINE_THREADS, "must be 0 (PyTorch's default) or positive, got "
                + engineThreads, where);
        String device = options.getOptional(SkipflowModelOptions.DEVICE).orElse(null);
        require(device == null || List.of("cpu", "gpu", "cuda").contains(device.toLowerCase(Locale.ROOT)),
                SkipflowModelOptions.DEVICE, "must be cpu or gpu, got " + device, where);

        Path model = checked(SkipflowModelOptions.MODEL, where,
                () -> ModelPaths.model(options.getOptional(SkipflowModelOptions.MODEL).map(Path::of).orElse(null)));
        ModelSpec spec = checked(SkipflowModelOptions.MODEL, where, () -> ModelLoader.spec(model));
        Path tokenizer = checked(SkipflowModelOptions.TOKENIZER, where, () -> ModelPaths.tokenizer(
                options.getOptional(SkipflowModelOptions.TOKENIZER).map(Path::of).orElse(null), model));
        ModelSource source = new ModelSource(model.toAbsolutePath().toString(), tokenizer.toAbsolutePath().toString(), null,
                device);
        checked(SkipflowModelOptions.TOKENIZER, where, () -> source.loadTokenizer(spec.vocabSize()));
        int context = EngineSlot.contextOf(spec, maxContext);
        require(maxTokens <= context, SkipflowModelOptions.MAX_TOKENS, "must be at most the context, " + context
                + " positions, got " + maxTokens, where);

        Path routerFile = artifactPath(options, SkipflowModelOptions.ROUTER, where);
        Path exitFile = artifactPath(options, SkipflowModelOptions.EXIT, where);
        boolean dense = options.get(SkipflowModelOptions.DENSE);
        require(!dense || (routerFile == null && exitFile == null), SkipflowModelOptions.DENSE,
                "serves without a router or an exit classifier; drop 'router' and 'exit', or 'dense'", where);
        if (!dense && routerFile == null && exitFile == null) {
            // a bundle serves its own router and exit classifier
            ShippedArtifacts.Found bundle = ShippedArtifacts.inBundle(model);
            routerFile = bundle.router() == null ? null : bundle.router().toAbsolutePath();
            exitFile = bundle.exit() == null ? null : bundle.exit().toAbsolutePath();
        }
        Path routerPath = routerFile;
        Path exitPath = exitFile;
        RouterSpec router = null;
        ExitArtifact exit = null;
        if (routerFile != null || exitFile != null) {
            // the fingerprint covers every tensor, so the weights are read once here to refuse a mismatched artifact now
            String fingerprint = checked(SkipflowModelOptions.MODEL, where, () -> Fingerprint.of(source.loadWeights()));
            if (routerPath != null) {
                router = checked(SkipflowModelOptions.ROUTER, where, () -> {
                    RouterArtifact a = RouterArtifact.load(routerPath);
                    a.requireModel(fingerprint, spec.nLayers(), routerPath);
                    return RouterSpec.learned(routerPath, null).withRouteDecode(a.routesDecode()); // the artifact's route
                });
            }
            if (exitPath != null) {
                exit = checked(SkipflowModelOptions.EXIT, where, () -> {
                    ExitArtifact a = ExitArtifact.load(exitPath);
                    a.requireModel(fingerprint, spec.nLayers(), exitPath);
                    return a;
                });
            }
        }
        return new PredictSettings(source, maxTokens, (float) temperature, (float) topP, maxBatch, maxContext, engineThreads,
                router, exit, List.copyOf(columns));
    }

    /** Every row's sampling; a fresh random seed per row when temperature > 0. */
    SamplingParams samplingParams() {
        return new SamplingParams(maxTokens, temperature, topP, null);
    }

    /** Whether rows run the adaptive path (a router or an exit classifier is configured). */
    boolean adaptive() {
        return router != null || exit != null;
    }

    private static void checkInput(ResolvedSchema input, String where) {
        List<Column> columns = input.getColumns();
        if (columns.size() != 1) {
            throw new ValidationException("A skipflow model takes exactly one input column, the prompt (INPUT (prompt "
                    + "STRING)); got " + columns.size() + ": " + input + where);
        }
        Column c = columns.get(0);
        LogicalType type = c.getDataType().getLogicalType();
        if (!type.is(LogicalTypeFamily.CHARACTER_STRING)) {
            throw new ValidationException("Input column '" + c.getName() + "' of a skipflow model is the prompt and must be "
                    + "STRING, got " + type + where);
        }
    }

    private static List<PredictColumn> outputColumns(ResolvedSchema output, String where) {
        List<PredictColumn> columns = new ArrayList<>();
        for (Column c : output.getColumns()) {
            PredictColumn known = PredictColumn.named(c.getName());
            if (known == null) {
                throw new ValidationException("Output column '" + c.getName() + "' is not one a skipflow model produces; "
                        + "declare any of: " + PredictColumn.describeAll() + where);
            }
            if (columns.contains(known)) {
                throw new ValidationException("Output column '" + c.getName() + "' is declared twice" + where);
            }
            LogicalType type = c.getDataType().getLogicalType();
            if (!type.is(known.type())) {
                throw new ValidationException("Output column '" + c.getName() + "' must be " + known.sqlType() + ", got "
                        + type + where);
            }
            columns.add(known);
        }
        if (columns.isEmpty()) {
            throw new ValidationException("A skipflow model needs at least one output column: " + PredictColumn.describeAll()
                    + where);
        }
        return columns;
    }

    private static Path artifactPath(ReadableConfig options, ConfigOption<String> option, String where) {
        String value = options.getOptional(option).orElse(null);
        if (value == null) {
            return null;
        }
        Path p = Path.of(value).toAbsolutePath();
        require(Files.isRegularFile(p), option, "the file " + p + " does not exist", where);
        return p;
    }

    private static void require(boolean ok, ConfigOption<?> option, String problem, String where) {
        if (!ok) {
            throw new ValidationException("Model option '" + option.key() + "' " + problem + where);
        }
    }

    /** Runs a check of the files behind {@code option}; the model layer's refusal comes back naming the option. */
    private static <T> T checked(ConfigOption<?> option, String where, Supplier<T> check) {
        try {
            return check.get();
        } catch (IllegalArgumentException | ModelFormatException | UncheckedIOException e) {
            throw new ValidationException("Model option '" + option.key() + "': " + e.getMessage() + where, e);
        }
    }
}
