package dev.skipflow.model.engine;

import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.sampling.Sampler;
import dev.skipflow.model.sampling.SamplingParams;
import java.util.Arrays;

/**
 * One generation in flight: its prompt, what it has produced, its place in the KV cache and its cost.
 * The {@link Scheduler} moves it through waiting, running and finished; the {@link ModelRunner} computes its
 * tokens. Owned by the engine's thread while running; read by the caller once finished.
 */
public final class Sequence {

    public enum FinishReason { STOP, LENGTH }

    private final Object tag;
    private final int[] prompt;
    private final Sampler sampler;
    private final FlopAccount account = new FlopAccount();
    /** Per layer, how many of this sequence's positions have keys/values there (fewer when routed). */
    int[] written;
    private boolean adaptive = true;
    private int[] generated = new int[16];
    private int generatedCount;
    int slot = -1;
    /** Tokens whose keys/values are in the cache; the next fed token goes at this position. */
    int position;
    private FinishReason finishReason;
    private final long submittedNanos;
    private long firstTokenNanos;
    private long finishedNanos;

    /**
     * @param tag the caller's handle (request id, record, future), returned untouched
     * @param prompt token ids, BOS included where the model expects it
     */
    public Sequence(Object tag, int[] prompt, SamplingParams params) {
        this(tag, prompt, Sampler.of(params));
    }

    /** The same with a sampler of the caller's (it carries the request's settings). */
    public Sequence(Object tag, int[] prompt, Sampler sampler) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("prompt has no tokens");
        }
        this.tag = tag;
        this.prompt = prompt.clone();
        this.sampler = sampler;
        this.submittedNanos = System.nanoTime();
    }

    /** Whether the engine's router and exit policy apply to this sequence (false: the dense path, for A/B). */
    public Sequence adaptive(boolean on) {
        this.adaptive = on;
        return this;
    }

    public boolean isAdaptive() {
        return adaptive;
    }

    public Object tag() {
        return tag;
    }

    public int[] prompt() {
        return prompt.clone();
    }

    public int promptLength() {
        return prompt.length;
    }

    int[] promptTokens() {
        return prompt;
    }

    public SamplingParams params() {
        return sampler.params();
    }

    Sampler sampler() {
        return sampler;
    }

    public int[] generated() {
        return Arrays.copyOf(generated, generatedCount);
    }

    public int generatedCount() {
        return generatedCount;
    }

    int lastToken() {
        return generatedCount > 0 ? generated[generatedCount - 1] : prompt[prompt.length - 1];
    }

    void append(int token) {
        if (generatedCount == generated.length) {
            generated = Arrays.copyOf(generated, generated.length * 2);
        }
        generated[generatedCount++] = token;
        if (generatedCount == 1) {
            firstTokenNanos = System.nanoTime();
        }
    }

    void finish(FinishReason reason) {
        this.finishReason = reason;
        this.finishedNanos = System.nanoTime();
    }

    public boolean isFinished() {
        return finishReason != null;
    }

    public FinishReason finishReason() {
        return finishReason;
    }

    public FlopAccount account() {
        return account;
    }

    public long submittedNanos() {
        return submittedNanos;
    }

    public long firstTokenNanos() {
        return firstTokenNanos;
    }

    public long finishedNanos() {
        return finishedNanos;
    }
}
