package dev.skipflow.operators;

import java.io.Serializable;

/**
 * A record that could not be answered: what is wrong (for a person), where it came from, and the original
 * payload as text, or base64 when it was not UTF-8.
 */
public record DeadLetter(String error, String topic, int partition, long offset, String payload)
        implements Serializable {}
