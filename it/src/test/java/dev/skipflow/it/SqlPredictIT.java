package dev.skipflow.it;

import static org.apache.flink.table.api.Expressions.$;
import static org.apache.flink.table.api.DataTypes.FIELD;
import static org.apache.flink.table.api.DataTypes.INT;
import static org.apache.flink.table.api.DataTypes.ROW;
import static org.apache.flink.table.api.DataTypes.STRING;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.model.exit.ExitArtifact;
import dev.skipflow.operators.sql.SkipflowModelOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.ModelDescriptor;
import org.apache.flink.table.api.Schema;
import org.apache.flink.table.api.Table;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.flink.types.ColumnList;
import org.apache.flink.types.Row;
import org.apache.flink.util.CloseableIterator;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Flink SQL's ML_PREDICT on a {@code 'provider' = 'skipflow'} model, on a MiniCluster with the real model: greedy rows
 * are the model's greedy continuations (as {@code ./skipflow generate} prints them, compared by {@link GreedyCheck}),
 * adaptive models save compute, bad rows come out with {@code error}, the Table API reaches the same model, and bad
 * models fail planning naming the option.
 */
class SqlPredictIT {

    @RegisterExtension
    static final MiniClusterExtension CLUSTER = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(2).build());

    static final String OUTPUT = "OUTPUT (completion STRING, finish_reason STRING, prompt_tokens INT, completion_tokens INT, "
            + "saved_fraction DOUBLE, token_blocks_skipped BIGINT, early_exit_tokens BIGINT, error STRING)";
    static final String COLUMNS = "id, completion, finish_reason, prompt_tokens, completion_tokens, saved_fraction, "
            + "token_blocks_skipped, early_exit_tokens, error";
    /** Rows in flight per slot: enough to fill the engine's batch of 4, so rows decode together. */
    static final String CONFIG = "MAP['async', 'true', 'max-concurrent-operations', '8', 'output-mode', 'ALLOW_UNORDERED']";
    static final List<String> PROMPTS = List.of("Once upon a time", "Lily and Tom went to the park", "The little dog",
            "One day, a girl named Sue", "There was a big red ball", "Tim had a toy car", "The sun was hot", "Mom said");
    static final int MAX_TOKENS = 24;
    static final AtomicInteger MODELS = new AtomicInteger();

    TableEnvironment tEnv;

    @BeforeEach
    void tableEnvironment() {
        tEnv = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < PROMPTS.size(); i++) {
            rows.add(Row.of("p-" + i, PROMPTS.get(i)));
        }
        rows.add(Row.of("empty", ""));
        rows.add(Row.of("too-long", "Once upon a time there was a little dog. ".repeat(60)));
        tEnv.createTemporaryView("prompts", tEnv.fromValues(ROW(FIELD("id", STRING()), FIELD("prompt", STRING())), rows));
        tEnv.createTemporaryView("numbers", tEnv.fromValues(ROW(FIELD("id", STRING()), FIELD("n", INT())), Row.of("x", 1)));
    }

    @Test
    void greedyRowsAreTheModelsGreedyContinuationsAndBadRowsSayWhy() throws Exception {
        String model = createModel(INPUT_PROMPT, OUTPUT, Map.of("model", modelFile().toString(), "max-tokens",
                String.valueOf(MAX_TOKENS), "max-batch", "4", "device", "cpu"));
        Map<String, Row> byId = predict(model, "prompts", false);
        assertEquals(PROMPTS.size() + 2, byId.size(), byId.toString());
        for (int i = 0; i < PROMPTS.size(); i++) {
            Row r = byId.get("p-" + i);
            assertNull(field(r, "error"), r.toString());
            assertTrue(List.of("stop", "length").contains((String) field(r, "finish_reason")), r.toString());
            assertTrue((Integer) field(r, "completion_tokens") <= MAX_TOKENS, r.toString());
            assertTrue((Integer) field(r, "prompt_tokens") >= 2, r.toString());
            assertEquals(0.0, (Double) field(r, "saved_fraction"), r.toString());
            assertEquals(0L, field(r, "token_blocks_skipped"), r.toString());
            GreedyCheck.assertGreedy(StreamingScenario.soloGreedy(PROMPTS.get(i), MAX_TOKENS),
                    (String) field(r, "completion"), "ML_PREDICT row p-" + i);
        }
        assertEquals("the prompt is empty", field(byId.get("empty"), "error"));
        assertNull(field(byId.get("empty"), "completion"));
        String tooLong = (String) field(byId.get("too-long"), "error");
        assertTrue(tooLong != null && tooLong.contains("the context holds"), String.valueOf(tooLong));
    }

    @Test
    void routerAndExitArtifactsSaveCompute() throws Exception {
        Path artifacts = Path.of("..", "docs", "report", "artifacts").toAbsolutePath().normalize();
        // the report's classifier at the SVM's own boundary: this test is about the provider's plumbing, and the
        // report's 99% threshold lets through too few exits for a handful of short prompts to show one for sure
        ExitArtifact report = ExitArtifact.load(artifacts.resolve("exit.json"));
        Path exit = Files.createDirectories(Path.of("target", "sql-predict-it")).resolve("exit-boundary.json");
        new ExitArtifact(report.modelFingerprint(), report.modelDescription(), report.classifier().withThreshold(0),
                report.targetAgreement(), report.training() + "; threshold set to 0 for SqlPredictIT").save(exit);
        String model = createModel(INPUT_PROMPT, OUTPUT, Map.of("max-tokens", String.valueOf(MAX_TOKENS), "max-batch", "4",
                "device", "cpu", "router", artifacts.resolve("router-0.20.json").toString(), "exit",
                exit.toAbsolutePath().toString()));
        Map<String, Row> byId = predict(model, "prompts", true);
        double saved = 0;
        long skipped = 0;
        long exited = 0;
        for (int i = 0; i < PROMPTS.size(); i++) {
            Row r = byId.get("p-" + i);
            assertNotNull(field(r, "completion"), r.toString());
            saved += (Double) field(r, "saved_fraction");
            skipped += (Long) field(r, "token_blocks_skipped");
            exited += (Long) field(r, "early_exit_tokens");
        }
        assertTrue(saved > 0 && skipped > 0 && exited > 0,
                "saved " + saved + ", token-blocks skipped " + skipped + ", early exits " + exited);
    }

    @Test
    void aBundleServesItsOwnRouterUnlessDense() throws Exception {
        Path bundle = Path.of("target", "sql-predict-it", "bundle-" + System.nanoTime()).toAbsolutePath();
        String original = StreamingScenario.shared().resolve("models/stories260K/stories260K.bin").toString();
        assertEquals(0, dev.skipflow.job.cli.SkipflowCli.execute("stack", "--model", original, "--device", "cpu",
                "--steps", "prune:0.3", "--prune-args", "--importance l2", "--router", "0.3", "--router-args",
                "--steps 5 --docs 16 --docs-per-step 2 --search-docs 4 --search-max-len 64 --generations 0 "
                        + "--oracle-docs 4 --max-len 32", "--out", bundle.toString()));
        for (boolean dense : new boolean[] {false, true}) {
            String model = createModel(INPUT_PROMPT, OUTPUT, Map.of("max-tokens", String.valueOf(MAX_TOKENS),
                    "max-batch", "4", "device", "cpu", "model", bundle.toString(), "dense", String.valueOf(dense)));
            Map<String, Row> byId = predict(model, "prompts", true);
            long skipped = 0;
            for (int i = 0; i < PROMPTS.size(); i++) {
                Row r = byId.get("p-" + i);
                assertTrue((Double) field(r, "saved_fraction") > 0.05, "pruned: " + r);
                skipped += (Long) field(r, "token_blocks_skipped");
            }
            assertEquals(dense, skipped == 0, (dense ? "dense" : "the bundle's router") + ": " + skipped
                    + " token-blocks skipped");
        }
    }

    @Test
    void theTableApiCreatesAndCallsTheModel() throws Exception {
        // ModelDescriptor is Flink 2.1's Table API for models, Model.predict 2.2's; typed options from the provider
        tEnv.createTemporaryModel("api_model", ModelDescriptor.forProvider("skipflow")
                .inputSchema(Schema.newBuilder().column("prompt", STRING()).build())
                .outputSchema(Schema.newBuilder().column("completion", STRING()).column("completion_tokens", INT()).build())
                .option(SkipflowModelOptions.MAX_TOKENS, 8).option(SkipflowModelOptions.DEVICE, "cpu").build());
        Table predicted = tEnv.fromModel("api_model").predict(tEnv.from("prompts"), ColumnList.of("prompt"),
                Map.of("max-concurrent-operations", "8"));
        Map<String, Row> byId = new HashMap<>();
        try (CloseableIterator<Row> rows = predicted.select($("id"), $("completion"), $("completion_tokens")).execute()
                .collect()) {
            rows.forEachRemaining(r -> byId.put((String) r.getField(0), r));
        }
        assertEquals(PROMPTS.size() + 2, byId.size(), byId.toString());
        for (int i = 0; i < PROMPTS.size(); i++) {
            Row r = byId.get("p-" + i);
            assertNotNull(r.getField(1), r.toString());
            assertTrue((Integer) r.getField(2) >= 1 && (Integer) r.getField(2) <= 8, r.toString());
        }
        assertNull(byId.get("empty").getField(1), "a refused row without an error column is all nulls");
    }

    @Test
    void badModelsFailPlanningNamingTheOption() throws Exception {
        Path artifacts = Path.of("..", "docs", "report", "artifacts");
        Path strangerRouter = stranger(artifacts.resolve("router-0.20.json"));
        Path strangerExit = stranger(artifacts.resolve("exit.json"));
        Map<Map<String, String>, List<String>> cases = new java.util.LinkedHashMap<>();
        cases.put(Map.of("max-tokenz", "5"), List.of("Unsupported options", "max-tokenz"));
        cases.put(Map.of("max-tokens", "many"), List.of("max-tokens", "many"));
        cases.put(Map.of("max-tokens", "0"), List.of("'max-tokens'", "at least 1"));
        cases.put(Map.of("max-batch", "0"), List.of("'max-batch'", "at least 1"));
        cases.put(Map.of("temperature", "-1"), List.of("'temperature'"));
        cases.put(Map.of("device", "tpu"), List.of("'device'", "cpu or gpu"));
        cases.put(Map.of("model", "/nowhere/stories.bin"), List.of("'model'", "/nowhere/stories.bin", "does not exist"));
        cases.put(Map.of("tokenizer", "/nowhere/tok.bin"), List.of("'tokenizer'", "/nowhere/tok.bin", "does not exist"));
        cases.put(Map.of("router", "/nowhere/router.json"), List.of("'router'", "/nowhere/router.json", "does not exist"));
        cases.put(Map.of("router", strangerRouter.toString()), List.of("'router'", "trained for model", "fingerprint"));
        cases.put(Map.of("exit", strangerExit.toString()), List.of("'exit'", "trained for model", "fingerprint"));
        for (var c : cases.entrySet()) {
            Map<String, String> options = new HashMap<>(c.getKey());
            options.putIfAbsent("device", "cpu");
            assertPlanningFails(createModel(INPUT_PROMPT, OUTPUT, options), "prompts", "prompt", c.getValue());
        }
        assertPlanningFails(createModel("INPUT (n INT)", OUTPUT, Map.of()), "numbers", "n", List.of("'n'", "STRING", "INT"));
        assertPlanningFails(createModel(INPUT_PROMPT, "OUTPUT (completion STRING, colour STRING)", Map.of()), "prompts",
                "prompt", List.of("'colour'", "completion STRING"));
        assertPlanningFails(createModel(INPUT_PROMPT, "OUTPUT (completion_tokens STRING)", Map.of()), "prompts", "prompt",
                List.of("'completion_tokens'", "INT"));
    }

    static final String INPUT_PROMPT = "INPUT (prompt STRING)";

    /** A copy of an artifact that claims another model's fingerprint. */
    static Path stranger(Path artifact) throws Exception {
        ObjectNode o = (ObjectNode) StreamingScenario.JSON.readTree(artifact.toFile());
        ((ObjectNode) o.get("model")).put("fingerprint", "ffffffffffffffff");
        Path copy = Path.of("target", "stranger-" + System.nanoTime() + "-" + artifact.getFileName());
        Files.writeString(copy, o.toString());
        return copy.toAbsolutePath();
    }

    static Path modelFile() {
        return StreamingScenario.shared().resolve("models/stories260K/stories260K.bin").toAbsolutePath().normalize();
    }

    String createModel(String input, String output, Map<String, String> options) {
        String name = "m" + MODELS.incrementAndGet();
        String with = options.entrySet().stream().map(e -> "'" + e.getKey() + "' = '" + e.getValue() + "'")
                .collect(Collectors.joining(", "));
        tEnv.executeSql("CREATE TEMPORARY MODEL " + name + " " + input + " " + output + " WITH ('provider' = 'skipflow'"
                + (with.isEmpty() ? "" : ", " + with) + ")");
        return name;
    }

    /** ML_PREDICT over {@code table}'s prompts, in positional or named-argument syntax. */
    Map<String, Row> predict(String model, String table, boolean namedArguments) throws Exception {
        Map<String, Row> byId = new HashMap<>();
        String call = namedArguments
                ? "INPUT => TABLE " + table + ", MODEL => MODEL " + model + ", ARGS => DESCRIPTOR(prompt), CONFIG => " + CONFIG
                : "TABLE " + table + ", MODEL " + model + ", DESCRIPTOR(prompt), " + CONFIG;
        TableResult result = tEnv.executeSql("SELECT " + COLUMNS + " FROM ML_PREDICT(" + call + ")");
        try (CloseableIterator<Row> rows = result.collect()) {
            rows.forEachRemaining(r -> byId.put((String) field(r, "id"), r));
        }
        return byId;
    }

    /** A column of a predicted row, by name (collected rows are positional, in {@link #COLUMNS}' order). */
    static Object field(Row r, String column) {
        return r.getField(List.of(COLUMNS.split(", ")).indexOf(column));
    }

    void assertPlanningFails(String model, String table, String column, List<String> mustMention) {
        String query = "SELECT * FROM ML_PREDICT(TABLE " + table + ", MODEL " + model + ", DESCRIPTOR(" + column + "))";
        TableResult started;
        try {
            started = tEnv.executeSql(query);
        } catch (RuntimeException e) {
            StringBuilder chain = new StringBuilder();
            for (Throwable t = e; t != null; t = t.getCause()) {
                chain.append(t.getMessage()).append('\n');
            }
            for (String s : mustMention) {
                assertTrue(chain.toString().contains(s), "error for " + model + " should mention [" + s + "]:\n" + chain);
            }
            return;
        }
        started.getJobClient().ifPresent(j -> j.cancel());
        fail("planning " + query + " should have failed, naming " + mustMention);
    }
}
