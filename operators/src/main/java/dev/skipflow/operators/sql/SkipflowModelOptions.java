package dev.skipflow.operators.sql;

import java.util.List;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;

/**
 * The {@code WITH} options of {@code CREATE MODEL ... WITH ('provider' = 'skipflow', ...)}. Plain dashed keys,
 * as Flink's own model providers use; the same meaning as the CLI's flags of the same names.
 */
public final class SkipflowModelOptions {

    private SkipflowModelOptions() {}

    public static final ConfigOption<String> MODEL = ConfigOptions.key("model").stringType().noDefaultValue()
            .withDescription("llama2.c .bin file, Hugging Face folder or compressed checkpoint folder. Default: "
                    + "$SKIPFLOW_MODEL, then models/stories260K/, then ../shared/models/stories260K/ (resolved when the "
                    + "query is planned).");

    public static final ConfigOption<String> TOKENIZER = ConfigOptions.key("tokenizer").stringType().noDefaultValue()
            .withDescription("llama2.c tokenizer.bin or tokenizer.json. Default: $SKIPFLOW_TOKENIZER, then one beside "
                    + "the model.");

    public static final ConfigOption<String> ROUTER = ConfigOptions.key("router").stringType().noDefaultValue()
            .withDescription("A trained router artifact (train-router): tokens skip blocks. Refused when trained for "
                    + "another model.");

    public static final ConfigOption<String> EXIT = ConfigOptions.key("exit").stringType().noDefaultValue()
            .withDescription("A trained exit-classifier artifact (train-exit): tokens stop before the last block. "
                    + "Refused when trained for another model.");

    public static final ConfigOption<Boolean> DENSE = ConfigOptions.key("dense").booleanType().defaultValue(false)
            .withDescription("Serve without the router and exit classifier a bundle (./skipflow stack) given as 'model' "
                    + "carries; without it they are used unless 'router' or 'exit' is set.");

    public static final ConfigOption<Integer> MAX_TOKENS = ConfigOptions.key("max-tokens").intType().defaultValue(64)
            .withDescription("Most tokens generated per row.");

    public static final ConfigOption<Double> TEMPERATURE = ConfigOptions.key("temperature").doubleType().defaultValue(0.0)
            .withDescription("0 is greedy; otherwise logits are divided by it before sampling (at most 10).");

    public static final ConfigOption<Double> TOP_P = ConfigOptions.key("top-p").doubleType().defaultValue(1.0)
            .withDescription("Nucleus sampling mass in (0, 1] when temperature > 0.");

    public static final ConfigOption<String> DEVICE = ConfigOptions.key("device").stringType().noDefaultValue()
            .withDescription("cpu or gpu. Default: gpu when the task manager has one, else cpu.");

    public static final ConfigOption<Integer> MAX_BATCH = ConfigOptions.key("max-batch").intType().defaultValue(64)
            .withDescription("Sequences decoded together per task slot. ML_PREDICT's max-concurrent-operations "
                    + "(default 10) bounds how many rows are in flight, so set it to at least this.");

    public static final ConfigOption<Integer> MAX_CONTEXT = ConfigOptions.key("max-context").intType().defaultValue(0)
            .withDescription("Positions per sequence (prompt + completion); 0 = the model's seq_len.");

    public static final ConfigOption<Integer> ENGINE_THREADS = ConfigOptions.key("engine-threads").intType()
            .defaultValue(1)
            .withDescription("PyTorch intra-op threads per slot on CPU; 0 = PyTorch's default (all cores).");

    /** Every option, in the order the docs list them. */
    public static final List<ConfigOption<?>> ALL = List.of(MODEL, TOKENIZER, ROUTER, EXIT, DENSE, MAX_TOKENS, TEMPERATURE,
            TOP_P, DEVICE, MAX_BATCH, MAX_CONTEXT, ENGINE_THREADS);
}
