package dev.skipflow.operators;

import java.io.Serializable;

/**
 * A record as read from the prompts topic, bytes untouched, so that anything malformed can still be
 * reported with where it came from.
 */
public record RawPrompt(String topic, int partition, long offset, byte[] key, byte[] value) implements Serializable {}
