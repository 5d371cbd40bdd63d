package dev.skipflow.operators.sql;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;
import org.apache.flink.table.types.logical.LogicalTypeRoot;

/**
 * The columns a skipflow model can declare in {@code OUTPUT (...)}: any of them, in any order. The type roots are
 * exact: STRING columns take any VARCHAR, counts are INT or BIGINT as listed.
 */
public enum PredictColumn {
    /** The generated text (without the prompt); null when the row could not be generated. */
    COMPLETION("completion", LogicalTypeRoot.VARCHAR, "STRING"),
    /** {@code stop} (a stop token) or {@code length} (max-tokens reached). */
    FINISH_REASON("finish_reason", LogicalTypeRoot.VARCHAR, "STRING"),
    PROMPT_TOKENS("prompt_tokens", LogicalTypeRoot.INTEGER, "INT"),
    COMPLETION_TOKENS("completion_tokens", LogicalTypeRoot.INTEGER, "INT"),
    /** Share of the dense original's FLOPs saved: compression, routing and early exit together. */
    SAVED_FRACTION("saved_fraction", LogicalTypeRoot.DOUBLE, "DOUBLE"),
    /** The part of saved_fraction that the compressed model's shapes saved (DESIGN §4 byMethod.compression). */
    COMPRESSION_SAVED("compression_saved", LogicalTypeRoot.DOUBLE, "DOUBLE"),
    /** The part that the router's skips saved (byMethod.routing). */
    ROUTING_SAVED("routing_saved", LogicalTypeRoot.DOUBLE, "DOUBLE"),
    /** The part that early exits saved (byMethod.exit). */
    EXIT_SAVED("exit_saved", LogicalTypeRoot.DOUBLE, "DOUBLE"),
    TOKEN_BLOCKS_SKIPPED("token_blocks_skipped", LogicalTypeRoot.BIGINT, "BIGINT"),
    EARLY_EXIT_TOKENS("early_exit_tokens", LogicalTypeRoot.BIGINT, "BIGINT"),
    /**
     * Why the row was not generated (null prompt, empty prompt, prompt and max-tokens beyond the context); null
     * otherwise. Bad rows never fail the job: they come out with this set and every other column null.
     */
    ERROR("error", LogicalTypeRoot.VARCHAR, "STRING");

    private final String columnName;
    private final LogicalTypeRoot type;
    private final String sqlType;

    PredictColumn(String columnName, LogicalTypeRoot type, String sqlType) {
        this.columnName = columnName;
        this.type = type;
        this.sqlType = sqlType;
    }

    public String columnName() {
        return columnName;
    }

    public LogicalTypeRoot type() {
        return type;
    }

    public String sqlType() {
        return sqlType;
    }

    /** The column of this name (case-insensitive), or null. */
    public static PredictColumn named(String name) {
        for (PredictColumn c : values()) {
            if (c.columnName.equals(name.toLowerCase(Locale.ROOT))) {
                return c;
            }
        }
        return null;
    }

    /** {@code completion STRING, finish_reason STRING, ...}: for error messages and docs. */
    public static String describeAll() {
        return Arrays.stream(values()).map(c -> c.columnName + " " + c.sqlType).collect(Collectors.joining(", "));
    }
}
