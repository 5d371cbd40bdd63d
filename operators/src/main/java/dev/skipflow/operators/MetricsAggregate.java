package dev.skipflow.operators;

import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.flops.Savings;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.streaming.api.functions.windowing.ProcessAllWindowFunction;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;

/** Aggregates completions of a processing-time window into one metrics record. */
public final class MetricsAggregate
        implements AggregateFunction<Completion, MetricsAggregate.Accumulator, MetricsAggregate.Accumulator> {

    /** Window state: counts, latencies for percentiles, and the same FLOP account a request uses. */
    public static final class Accumulator implements java.io.Serializable {
        public long requests;
        public long completionTokens;
        public ArrayList<Long> latencies = new ArrayList<>();
        public FlopAccount flops = new FlopAccount();
    }

    @Override
    public Accumulator createAccumulator() {
        return new Accumulator();
    }

    @Override
    public Accumulator add(Completion c, Accumulator acc) {
        acc.requests++;
        acc.completionTokens += c.completionTokens();
        acc.latencies.add(c.latencyMs());
        Savings s = c.savings();
        acc.flops.add(s);
        return acc;
    }

    @Override
    public Accumulator getResult(Accumulator acc) {
        return acc;
    }

    @Override
    public Accumulator merge(Accumulator a, Accumulator b) {
        a.requests += b.requests;
        a.completionTokens += b.completionTokens;
        a.latencies.addAll(b.latencies);
        a.flops.addAll(b.flops);
        return a;
    }

    /** Attaches the window bounds and computes rates and percentiles. */
    public static final class ToRecord extends ProcessAllWindowFunction<Accumulator, WindowMetrics, TimeWindow> {
        @Override
        public void process(Context ctx, Iterable<Accumulator> in, Collector<WindowMetrics> out) {
            for (Accumulator acc : in) {
                TimeWindow w = ctx.window();
                double seconds = Math.max(1, w.getEnd() - w.getStart()) / 1000.0;
                List<Long> sorted = new ArrayList<>(acc.latencies);
                Collections.sort(sorted);
                out.collect(new WindowMetrics(w.getStart(), w.getEnd(), acc.requests, acc.completionTokens,
                        acc.completionTokens / seconds, percentile(sorted, 0.50), percentile(sorted, 0.99),
                        acc.flops.savings().savedFraction(), acc.flops.savings().byMethod()));
            }
        }
    }

    /** Nearest-rank percentile of a sorted list; 0 when empty. */
    public static double percentile(List<Long> sorted, double q) {
        if (sorted.isEmpty()) {
            return 0;
        }
        int rank = (int) Math.ceil(q * sorted.size());
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, rank - 1)));
    }
}
