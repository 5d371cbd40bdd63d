package dev.skipflow.job.local;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads what the job answered, as a user would: a read_committed consumer on the completions and
 * dead-letter topics, from the beginning.
 */
public final class AnswerCollector implements AutoCloseable {

    /** One output record: which topic, its key and its JSON value, and where it is (partition, offset). */
    public record Answer(String topic, String key, String value, int partition, long offset) {
        public Answer(String topic, String key, String value) {
            this(topic, key, value, -1, -1L);
        }

        /** topic/partition:offset: the same record read twice (a reader re-reading after a rebalance) has the same one. */
        public String position() {
            return topic + "/" + partition + ":" + offset;
        }
    }

    private final KafkaConsumer<byte[], byte[]> consumer;

    public AnswerCollector(String bootstrap, String... topics) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "skipflow-reader-" + UUID.randomUUID());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        consumer.subscribe(List.of(topics));
    }

    /** Polls once and hands each record to {@code sink}; returns how many arrived. */
    public int poll(Duration timeout, Consumer<Answer> sink) {
        long start = System.nanoTime();
        int n = 0;
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(timeout)) {
            sink.accept(new Answer(r.topic(), r.key() == null ? null : new String(r.key(), StandardCharsets.UTF_8),
                    new String(r.value(), StandardCharsets.UTF_8), r.partition(), r.offset()));
            n++;
        }
        // While the job's transactions are open, a read_committed fetch can come back empty at once; without
        // a pause this loop spins a whole core (measured), which on a small machine slows the job itself.
        long waitedMs = (System.nanoTime() - start) / 1_000_000;
        if (n == 0 && waitedMs < timeout.toMillis()) {
            try {
                Thread.sleep(Math.min(5, timeout.toMillis() - waitedMs));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        return n;
    }

    /** Collects until {@code expected} records arrived or the deadline passed; then a short quiet period to catch duplicates. */
    public List<Answer> collect(int expected, Duration timeout, Duration quiet) {
        List<Answer> all = new ArrayList<>();
        long deadline = System.nanoTime() + timeout.toNanos();
        while (all.size() < expected && System.nanoTime() < deadline) {
            poll(Duration.ofMillis(200), all::add);
        }
        long quietEnd = System.nanoTime() + quiet.toNanos();
        while (System.nanoTime() < quietEnd) {
            poll(Duration.ofMillis(200), all::add);
        }
        return all;
    }

    @Override
    public void close() {
        consumer.close();
    }
}
