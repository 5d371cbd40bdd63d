package dev.skipflow.model.engine;

import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;

/**
 * PyTorch's intra-op thread count, process-wide. Inside a Flink task manager the default (all cores)
 * oversubscribes the CPU: OpenMP workers spin while Kafka and Flink threads need the same cores (measured:
 * 2.6x less throughput through Kafka with 2 threads than with 1 on a 2-core machine).
 */
public final class EngineThreads {

    private EngineThreads() {}

    /** Sets the intra-op threads when {@code threads > 0}; returns the count now in effect. */
    public static int set(int threads) {
        Engine.getInstance(); // loads the native library first
        if (threads > 0) {
            JniUtils.setNumThreads(threads);
        }
        return JniUtils.getNumThreads();
    }
}
