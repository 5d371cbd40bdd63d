package dev.skipflow.operators.sql;

import dev.skipflow.model.engine.Scheduler;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.flops.Savings;
import dev.skipflow.model.tokenizer.Tokenizer;
import dev.skipflow.operators.internal.EngineRunner;
import dev.skipflow.operators.internal.EngineSlot;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MeterView;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.AsyncPredictFunction;
import org.apache.flink.table.functions.FunctionContext;

/**
 * ML_PREDICT for a skipflow model: each parallel instance loads the model once and runs one continuous-batching
 * engine ({@link EngineSlot}, as the DataStream job's {@code GenerateFunction}), so rows in flight together
 * (ML_PREDICT's {@code max-concurrent-operations}) decode as one batch. A row that cannot be generated comes out with
 * only {@code error} set; an engine failure fails the job, which restarts from its checkpoint.
 */
public final class SkipflowPredictFunction extends AsyncPredictFunction {

    private final PredictSettings settings;
    private transient EngineSlot slot;
    private transient Tokenizer tokenizer;
    private transient EngineRunner runner;
    private transient Counter requests;
    private transient Counter completionTokens;
    private transient Counter refusedRows;

    SkipflowPredictFunction(PredictSettings settings) {
        this.settings = settings;
    }

    @Override
    public void open(FunctionContext context) throws Exception {
        super.open(context);
        int subtask = context.getTaskInfo().getIndexOfThisSubtask();
        slot = EngineSlot.open(settings.source(), settings.maxBatch(), settings.maxContext(), settings.engineThreads(),
                settings.router(), settings.exit(), "skipflow-sql-engine-" + subtask);
        tokenizer = slot.tokenizer();
        runner = slot.runner();
        MetricGroup group = context.getMetricGroup().addGroup("skipflow");
        requests = group.counter("requests");
        completionTokens = group.counter("completionTokens");
        refusedRows = group.counter("refusedRows");
        group.meter("tokensPerSecond", new MeterView(completionTokens));
        group.gauge("batchSize", runner::batchSize);
        group.gauge("queueDepth", runner::queueDepth);
    }

    @Override
    public CompletableFuture<Collection<RowData>> asyncPredict(RowData input) {
        if (input.isNullAt(0)) {
            return refused("the prompt is null");
        }
        String prompt = input.getString(0).toString();
        if (prompt.isEmpty()) {
            return refused("the prompt is empty");
        }
        int[] tokens = tokenizer.encode(prompt, true);
        String tooLong = Scheduler.contextProblem(tokens.length, settings.maxTokens(), runner.context());
        if (tooLong != null) {
            return refused(tooLong);
        }
        return runner.submit("ml_predict", tokens, settings.samplingParams(), settings.adaptive())
                .thenApply(s -> List.of(row(s, tokens)));
    }

    private RowData row(Sequence s, int[] prompt) {
        requests.inc();
        completionTokens.inc(s.generatedCount());
        Savings savings = s.account().savings();
        GenericRowData row = new GenericRowData(settings.columns().size());
        for (int i = 0; i < settings.columns().size(); i++) {
            row.setField(i, switch (settings.columns().get(i)) {
                case COMPLETION -> StringData.fromString(tokenizer.decode(prompt[prompt.length - 1], s.generated()));
                case FINISH_REASON -> StringData.fromString(s.finishReason().name().toLowerCase(Locale.ROOT));
                case PROMPT_TOKENS -> prompt.length;
                case COMPLETION_TOKENS -> s.generatedCount();
                case SAVED_FRACTION -> savings.savedFraction();
                case COMPRESSION_SAVED -> savings.byMethod().compression();
                case ROUTING_SAVED -> savings.byMethod().routing();
                case EXIT_SAVED -> savings.byMethod().exit();
                case TOKEN_BLOCKS_SKIPPED -> savings.tokenBlocksSkipped();
                case EARLY_EXIT_TOKENS -> savings.earlyExitTokens();
                case ERROR -> null;
            });
        }
        return row;
    }

    /** A row with only {@code error} set (when the model declares it): bad input never stops the job. */
    private CompletableFuture<Collection<RowData>> refused(String why) {
        refusedRows.inc();
        GenericRowData row = new GenericRowData(settings.columns().size());
        int error = settings.columns().indexOf(PredictColumn.ERROR);
        if (error >= 0) {
            row.setField(error, StringData.fromString(why));
        }
        return CompletableFuture.completedFuture(List.of(row));
    }

    @Override
    public void close() throws Exception {
        if (slot != null) {
            slot.close();
        }
        super.close();
    }
}
