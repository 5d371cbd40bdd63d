package dev.skipflow.it;

import com.fasterxml.jackson.databind.JsonNode;
import dev.skipflow.job.local.AnswerCollector;
import dev.skipflow.operators.MetricsAggregate;
import java.net.http.HttpClient;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What the fault ITs report per scenario besides lost and duplicated: the job JVM's peak heap, sampled once a second
 * from its REST API (samples fail while the job is down and are skipped), and the completions' {@code latencyMs}
 * p50/p99 (measured by the job from when it read the request, so a request replayed after a restart counts from its
 * re-read).
 */
final class JobStats implements AutoCloseable {

    private final AtomicLong peakHeap = new AtomicLong();
    private final AtomicLong heapMax = new AtomicLong();
    private final AtomicLong samples = new AtomicLong();
    private final Thread sampler;
    private volatile boolean running = true;

    /** Starts sampling the heap of the job whose web UI listens on {@code webPort}. */
    JobStats(int webPort) {
        String base = "http://127.0.0.1:" + webPort;
        HttpClient http = HttpClient.newHttpClient();
        sampler = new Thread(() -> {
            while (running) {
                try {
                    long[] heap = OverloadIT.heap(http, base);
                    peakHeap.accumulateAndGet(heap[0], Math::max);
                    heapMax.set(heap[1]);
                    samples.incrementAndGet();
                } catch (Exception e) {
                    // the job is down (killed, restarting) or has no task manager yet
                }
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "job-stats-heap");
        sampler.setDaemon(true);
        sampler.start();
    }

    /** "peak heap P MB of M MB (N samples), latency p50/p99 A/B ms (C completions)". */
    String describe(List<AnswerCollector.Answer> answers) {
        List<Long> latencies = new ArrayList<>();
        for (AnswerCollector.Answer a : answers) {
            try {
                JsonNode v = StreamingScenario.JSON.readTree(a.value());
                if (v.has("latencyMs")) {
                    latencies.add(v.get("latencyMs").asLong());
                }
            } catch (java.io.IOException e) {
                throw new AssertionError(e);
            }
        }
        Collections.sort(latencies);
        return String.format("peak heap %d MB of %d MB (%d samples), latency p50/p99 %.0f/%.0f ms (%d completions)",
                peakHeap.get() >> 20, heapMax.get() >> 20, samples.get(), MetricsAggregate.percentile(latencies, 0.5),
                MetricsAggregate.percentile(latencies, 0.99), latencies.size());
    }

    long samples() {
        return samples.get();
    }

    @Override
    public void close() {
        running = false;
        sampler.interrupt();
    }
}
