package dev.skipflow.operators;

import java.io.Serializable;

/** What generation produced for one request: a completion, or a dead letter when it could not run. */
public record GenerationOutcome(Completion completion, DeadLetter deadLetter) implements Serializable {

    public static GenerationOutcome of(Completion c) {
        return new GenerationOutcome(c, null);
    }

    public static GenerationOutcome failed(DeadLetter d) {
        return new GenerationOutcome(null, d);
    }
}
