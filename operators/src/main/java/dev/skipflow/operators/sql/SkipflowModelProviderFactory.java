package dev.skipflow.operators.sql;

import java.util.LinkedHashSet;
import java.util.Set;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.factories.ModelProviderFactory;
import org.apache.flink.table.functions.AsyncPredictFunction;
import org.apache.flink.table.ml.AsyncPredictRuntimeProvider;
import org.apache.flink.table.ml.ModelProvider;

/**
 * {@code 'provider' = 'skipflow'}: LLM generation in-process for {@code ML_PREDICT}, on the same continuous-batching
 * engine as the DataStream job, with token routing and early exit when the model names their artifacts. Flink calls
 * this when it plans a query that uses the model; every option, the schemas, the files and the artifacts'
 * fingerprints are checked then ({@link PredictSettings#of}), so a bad model fails before the job starts.
 */
public final class SkipflowModelProviderFactory implements ModelProviderFactory {

    public static final String IDENTIFIER = "skipflow";

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of();
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return new LinkedHashSet<>(SkipflowModelOptions.ALL);
    }

    @Override
    public ModelProvider createModelProvider(Context context) {
        FactoryUtil.ModelProviderFactoryHelper helper = FactoryUtil.createModelProviderFactoryHelper(this, context);
        helper.validate(); // unknown options, and values that do not parse as their type, each named
        var model = context.getCatalogModel();
        PredictSettings settings = PredictSettings.of(helper.getOptions(), model.getResolvedInputSchema(),
                model.getResolvedOutputSchema(), context.getObjectIdentifier().asSummaryString());
        return new Provider(settings);
    }

    /** Hands each ML_PREDICT call site its own function (one engine per parallel instance). */
    private record Provider(PredictSettings settings) implements AsyncPredictRuntimeProvider {

        @Override
        public AsyncPredictFunction createAsyncPredictFunction(ModelProvider.Context context) {
            return new SkipflowPredictFunction(settings);
        }

        @Override
        public ModelProvider copy() {
            return new Provider(settings);
        }
    }
}
