package dev.skipflow.operators;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/** Keeps each prompts record as bytes plus its coordinates; parsing happens downstream, where errors become dead letters. */
public final class RawPromptDeserializationSchema implements KafkaRecordDeserializationSchema<RawPrompt> {

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<RawPrompt> out) {
        out.collect(new RawPrompt(record.topic(), record.partition(), record.offset(), record.key(), record.value()));
    }

    @Override
    public TypeInformation<RawPrompt> getProducedType() {
        return TypeInformation.of(RawPrompt.class);
    }
}
