package dev.skipflow.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.job.Topics;
import dev.skipflow.job.local.AnswerCollector;
import dev.skipflow.job.local.EmbeddedKafkaBroker;
import dev.skipflow.operators.MetricsAggregate;
import java.net.http.HttpClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/**
 * 5× overload on the job in its own process ({@code ./skipflow job}, -Xmx512m): first the sustained rate is measured
 * on a backlog, then prompts are offered at 5× that rate for {@code -Dskipflow.overload.seconds} (20 in CI; the issue's
 * full run is 120). The job must stay up without restarting, hold no more than its async capacity
 * ({@code --max-in-flight}) in the operator while the surplus waits in Kafka as consumer lag, and afterwards have
 * answered every prompt exactly once. Reports peak heap and latency p50/p99 during and after the burst.
 */
class OverloadIT {

    static final int SECONDS = Integer.getInteger("skipflow.overload.seconds", 20);
    static final int MAX_IN_FLIGHT = 64;
    static final int MAX_TOKENS = 16;
    static final List<String> PROMPTS = List.of("Once upon a time", "Lily and Tom went to the park", "The little dog",
            "One day, a girl named Sue", "There was a big red ball", "Tim had a toy car", "The sun was hot", "Mom said");

    final Map<String, Long> sentNanos = new ConcurrentHashMap<>();
    final Map<String, Long> latencyMs = new ConcurrentHashMap<>();
    final Map<String, Integer> answersPerId = new ConcurrentHashMap<>();
    final java.util.Set<String> seenPositions = ConcurrentHashMap.newKeySet();

    @Test
    void fiveTimesTheSustainedRateStaysUpBoundedAndAnswersEverythingOnce() throws Exception {
        String suffix = StreamingScenario.suffix();
        Path work = Path.of("target", "it-overload", suffix).toAbsolutePath();
        String prompts = "prompts-" + suffix;
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.start(0, work.resolve("kafka"), true)) {
            String bootstrap = broker.bootstrapServers();
            Topics.create(bootstrap, 2, prompts, "completions-" + suffix, "prompts.dlq-" + suffix, "metrics-" + suffix);
            int web = ChildProcess.freePort();
            List<String> args = ChildProcess.jobArgs(bootstrap, suffix);
            args.addAll(List.of("--web-ui-port", String.valueOf(web)));
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            pp.put(ProducerConfig.LINGER_MS_CONFIG, "5");
            try (ChildProcess job = ProcessFaultsIT.startJob("job", work, List.of("-Xmx512m"), args);
                    KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp, new ByteArraySerializer(),
                            new ByteArraySerializer());
                    AnswerCollector reader = new AnswerCollector(bootstrap, "completions-" + suffix, "prompts.dlq-" + suffix);
                    Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
                HttpClient http = HttpClient.newHttpClient();
                String base = "http://127.0.0.1:" + web;
                String jobId = EndToEndIT.get(http, base + "/jobs/overview").get("jobs").get(0).get("jid").asText();

                // 1. the sustained rate: after a warm-up, a backlog of 8x the async capacity drained flat out,
                //    counted from the first answer to the last (answers become visible at checkpoints)
                int warmup = 4 * MAX_IN_FLIGHT;
                for (int i = 0; i < warmup; i++) {
                    send(producer, prompts, "warmup-" + i);
                }
                producer.flush();
                awaitAnswers(reader, warmup, Duration.ofMinutes(3));
                // Answers become visible in checkpoint-sized chunks (under backpressure barriers queue behind
                // buffered records), so the rate is taken from the end of sending to the last answer: it includes
                // one visibility delay and errs low, i.e. towards a milder overload. The REST counters lag by
                // the metric fetcher's 10 s, too coarse for this.
                int measured = 32 * MAX_IN_FLIGHT;
                for (int i = 0; i < measured; i++) {
                    send(producer, prompts, "rate-" + i);
                }
                producer.flush();
                long sentAll = System.nanoTime();
                awaitAnswers(reader, warmup + measured, Duration.ofMinutes(5));
                double rate = measured / Math.max(0.5, (System.nanoTime() - sentAll) / 1e9);
                int backlog = warmup + measured;
                System.err.printf("OverloadIT: sustained rate %.1f prompts/s (%d prompts after a warm-up of %d, maxTokens %d, "
                        + "max batch 16, %d in flight)%n", rate, measured, warmup, MAX_TOKENS, MAX_IN_FLIGHT);

                // 2. 5x that rate for SECONDS, sampling heap, lag and the operator's occupancy meanwhile
                double offered = 5 * rate;
                int burst = (int) Math.round(offered * SECONDS);
                AtomicBoolean sampling = new AtomicBoolean(true);
                AtomicLong peakHeap = new AtomicLong();
                AtomicLong peakLag = new AtomicLong();
                AtomicLong peakOccupancy = new AtomicLong();
                AtomicLong heapMax = new AtomicLong();
                Thread sampler = new Thread(() -> {
                    while (sampling.get()) {
                        try {
                            long[] heap = heap(http, base);
                            peakHeap.accumulateAndGet(heap[0], Math::max);
                            heapMax.set(heap[1]);
                            peakLag.accumulateAndGet(lag(admin, "skipflow-" + suffix, prompts), Math::max);
                            long occupancy = RequestFaultsIT.sumMetric(http, base, jobId, "generate",
                                    "generate.skipflow.queueDepth") + RequestFaultsIT.sumMetric(http, base, jobId,
                                    "generate", "generate.skipflow.batchSize");
                            peakOccupancy.accumulateAndGet(occupancy, Math::max);
                            Thread.sleep(1000);
                        } catch (InterruptedException e) {
                            return;
                        } catch (Exception e) {
                            System.err.println("OverloadIT sampler: " + e);
                        }
                    }
                }, "overload-sampler");
                sampler.setDaemon(true);
                sampler.start();
                long burstStart = System.nanoTime();
                List<String> burstIds = new ArrayList<>();
                for (int i = 0; i < burst; i++) {
                    long due = burstStart + (long) (i * 1e9 / offered);
                    while (System.nanoTime() < due) {
                        reader.poll(Duration.ofMillis(1), this::record);
                    }
                    String id = "burst-" + i;
                    burstIds.add(id);
                    send(producer, prompts, id);
                }
                producer.flush();
                double burstSeconds = (System.nanoTime() - burstStart) / 1e9;
                long lagAtEnd = lag(admin, "skipflow-" + suffix, prompts);
                awaitAnswers(reader, backlog + burst, Duration.ofSeconds(SECONDS * 12L + 120));
                double drainedAfter = (System.nanoTime() - burstStart) / 1e9;

                // 3. after the burst: a gentle load again
                List<String> afterIds = new ArrayList<>();
                for (int i = 0; i < 40; i++) {
                    String id = "after-" + i;
                    afterIds.add(id);
                    send(producer, prompts, id);
                    producer.flush();
                    long until = System.nanoTime() + (long) (1e9 / (rate / 2));
                    while (System.nanoTime() < until) {
                        reader.poll(Duration.ofMillis(5), this::record);
                    }
                }
                awaitAnswers(reader, backlog + burst + 40, Duration.ofMinutes(2));
                long quietEnd = System.nanoTime() + 3_000_000_000L;
                while (System.nanoTime() < quietEnd) {
                    reader.poll(Duration.ofMillis(200), this::record);
                }
                sampling.set(false);
                sampler.interrupt();
                sampler.join(5000);

                assertTrue(job.isAlive(), "the job process is up");
                JsonNode restarts = RequestFaultsIT.jobMetric(http, base, jobId, "numRestarts");
                assertEquals(0, restarts.get(0).get("value").asLong(), "no restart: " + restarts);
                int expected = backlog + burst + 40;
                long dup = answersPerId.values().stream().filter(n -> n > 1).count();
                long lost = sentNanos.keySet().stream().filter(id -> !answersPerId.containsKey(id)).count();
                long[] during = percentiles(burstIds);
                long[] after = percentiles(afterIds);
                System.err.printf("OverloadIT: offered %.1f prompts/s (5x) for %.1f s = %d prompts; consumer lag at the end of "
                        + "the burst %d, peak %d; operator occupancy (batch + queue) peak %d of %d; peak heap %d MB of %d MB; "
                        + "all answered %.0f s after the burst began (%.1f prompts/s drained, so %.1fx what the job managed); "
                        + "%d prompts in, %d answered, %d duplicated, %d lost; "
                        + "latency p50/p99 during the burst %d/%d ms, after %d/%d ms%n", offered, burstSeconds, burst, lagAtEnd,
                        peakLag.get(), peakOccupancy.get(), MAX_IN_FLIGHT, peakHeap.get() >> 20, heapMax.get() >> 20,
                        drainedAfter, burst / drainedAfter, offered / (burst / drainedAfter), expected, answersPerId.size(),
                        dup, lost, during[0], during[1], after[0], after[1]);
                assertEquals(0, dup, "duplicates");
                assertEquals(0, lost, "lost");
                assertEquals(expected, answersPerId.size());
                assertTrue(peakLag.get() > 4L * MAX_IN_FLIGHT, "the surplus waited in Kafka as consumer lag: " + peakLag);
                assertTrue(peakOccupancy.get() <= MAX_IN_FLIGHT, "the operator held at most its capacity: " + peakOccupancy);
                assertTrue(peakHeap.get() < heapMax.get(), "heap stayed below its maximum");
            }
        }
    }

    void send(KafkaProducer<byte[], byte[]> producer, String topic, String id) {
        ObjectNode r = StreamingScenario.JSON.createObjectNode();
        r.put("id", id);
        r.put("prompt", PROMPTS.get(Math.floorMod(id.hashCode(), PROMPTS.size())));
        r.put("maxTokens", MAX_TOKENS);
        sentNanos.put(id, System.nanoTime());
        producer.send(new ProducerRecord<>(topic, r.toString().getBytes(StandardCharsets.UTF_8)));
    }

    void record(AnswerCollector.Answer a) {
        if (!seenPositions.add(a.position())) {
            return;
        }
        long now = System.nanoTime();
        try {
            JsonNode v = StreamingScenario.JSON.readTree(a.value());
            if (!v.has("id")) {
                throw new AssertionError("dead letter under overload: " + a.value());
            }
            String id = v.get("id").asText();
            answersPerId.merge(id, 1, Integer::sum);
            Long sent = sentNanos.get(id);
            if (sent != null) {
                latencyMs.putIfAbsent(id, (now - sent) / 1_000_000);
            }
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
    }

    void awaitAnswers(AnswerCollector reader, int count, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (answersPerId.size() < count && System.nanoTime() < deadline) {
            reader.poll(Duration.ofMillis(100), this::record);
        }
        assertTrue(answersPerId.size() >= count, "only " + answersPerId.size() + " of " + count + " answered in " + timeout);
    }

    long[] percentiles(List<String> ids) {
        List<Long> l = new ArrayList<>();
        for (String id : ids) {
            Long v = latencyMs.get(id);
            if (v != null) {
                l.add(v);
            }
        }
        Collections.sort(l);
        return new long[] {(long) MetricsAggregate.percentile(l, 0.5), (long) MetricsAggregate.percentile(l, 0.99)};
    }

    /** Heap used and max of the job's JVM (its task manager; JobManager and TaskManager share it locally). */
    static long[] heap(HttpClient http, String base) throws Exception {
        JsonNode tms = EndToEndIT.get(http, base + "/taskmanagers");
        String tm = tms.get("taskmanagers").get(0).get("id").asText();
        JsonNode m = EndToEndIT.get(http, base + "/taskmanagers/" + tm
                + "/metrics?get=Status.JVM.Memory.Heap.Used,Status.JVM.Memory.Heap.Max");
        long used = 0;
        long max = 0;
        for (JsonNode n : m) {
            if (n.get("id").asText().endsWith("Used")) {
                used = n.get("value").asLong();
            } else {
                max = n.get("value").asLong();
            }
        }
        return new long[] {used, max};
    }

    /** Records on the prompts topic past the job's committed offsets (committed at each checkpoint). */
    static long lag(Admin admin, String group, String topic) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> committed =
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        var parts = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions();
        Map<TopicPartition, OffsetSpec> latest = new java.util.HashMap<>();
        parts.forEach(p -> latest.put(new TopicPartition(topic, p.partition()), OffsetSpec.latest()));
        long lag = 0;
        for (var e : admin.listOffsets(latest).all().get().entrySet()) {
            OffsetAndMetadata c = committed.get(e.getKey());
            lag += e.getValue().offset() - (c == null ? 0 : c.offset());
        }
        return lag;
    }
}
