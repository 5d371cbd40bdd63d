package dev.skipflow.operators.internal;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;

/**
 * Failure injection for recovery tests: throws once, on the first attempt of the task, when the N-th
 * record arrives. After the restart (attempt number above 0) it passes everything through.
 */
public final class FailOnceMap<T> extends RichMapFunction<T, T> {

    /** Failures injected in this JVM, so a test can tell the restart really happened. */
    public static final java.util.concurrent.atomic.AtomicInteger INJECTED = new java.util.concurrent.atomic.AtomicInteger();

    private final long failAt;
    private transient long seen;
    private transient boolean firstAttempt;

    public FailOnceMap(long failAt) {
        this.failAt = failAt;
    }

    @Override
    public void open(OpenContext openContext) {
        firstAttempt = getRuntimeContext().getTaskInfo().getAttemptNumber() == 0;
    }

    @Override
    public T map(T value) {
        if (firstAttempt && ++seen == failAt) {
            INJECTED.incrementAndGet();
            throw new IllegalStateException("injected failure at record " + failAt + " (test hook --fail-once-after)");
        }
        return value;
    }
}
