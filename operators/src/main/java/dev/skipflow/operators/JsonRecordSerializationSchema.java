package dev.skipflow.operators;

import java.nio.charset.StandardCharsets;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.util.function.SerializableFunction;
import org.apache.kafka.clients.producer.ProducerRecord;

/** Writes an output record as JSON to a fixed topic, optionally keyed. */
public final class JsonRecordSerializationSchema<T> implements KafkaRecordSerializationSchema<T> {

    private final String topic;
    private final SerializableFunction<T, String> key;
    private final SerializableFunction<T, byte[]> value;

    private JsonRecordSerializationSchema(String topic, SerializableFunction<T, String> key,
            SerializableFunction<T, byte[]> value) {
        this.topic = topic;
        this.key = key;
        this.value = value;
    }

    /** completions, keyed by request id. */
    public static JsonRecordSerializationSchema<Completion> completions(String topic) {
        return new JsonRecordSerializationSchema<>(topic, Completion::id, Json::completion);
    }

    public static JsonRecordSerializationSchema<DeadLetter> deadLetters(String topic) {
        return new JsonRecordSerializationSchema<>(topic, null, Json::deadLetter);
    }

    public static JsonRecordSerializationSchema<WindowMetrics> metrics(String topic) {
        return new JsonRecordSerializationSchema<>(topic, null, Json::metrics);
    }

    @Override
    public ProducerRecord<byte[], byte[]> serialize(T element, KafkaSinkContext context, Long timestamp) {
        byte[] k = key == null ? null : key.apply(element).getBytes(StandardCharsets.UTF_8);
        return new ProducerRecord<>(topic, null, timestamp, k, value.apply(element));
    }
}
