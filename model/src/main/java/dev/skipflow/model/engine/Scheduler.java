package dev.skipflow.model.engine;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;

/**
 * Continuous batching's bookkeeping, apart from the model (vLLM's scheduler / model-runner split): admission
 * into free slots, stop rules, and slot compaction. Sequences are admitted as slots free up and leave the moment
 * they finish; the running batch always occupies slots {@code 0..n-1} (a leaving sequence's slot is refilled by
 * moving the last one down), so a decode step reads the KV cache as one strided view. Pure Java, no tensors:
 * the {@link ModelRunner} does what the moves say. Not thread-safe: one thread owns an engine.
 */
public final class Scheduler {

    /** Copy a slot's first {@code length} cached positions into another slot. */
    public record SlotMove(int from, int to, int length) {}

    /** Sequences that finished in a step, and the cache moves that keep the running batch at slots 0..n-1. */
    public record Outcome(List<Sequence> finished, List<SlotMove> moves) {}

    private final int maxBatch;
    private final int context;
    private final int layers;
    private final Set<Integer> stopTokens;
    private final ArrayDeque<Sequence> waiting = new ArrayDeque<>();
    private final List<Sequence> running = new ArrayList<>();

    /**
     * @param stopTokens sampled tokens that end a sequence (the tokenizer's end of sequence); none never stops early
     */
    public Scheduler(int maxBatch, int context, int layers, Set<Integer> stopTokens) {
        if (maxBatch <= 0) {
            throw new IllegalArgumentException("max batch must be at least 1, got " + maxBatch);
        }
        this.maxBatch = maxBatch;
        this.context = context;
        this.layers = layers;
        this.stopTokens = Set.copyOf(stopTokens);
    }

    /**
     * Why a prompt of this length cannot run with {@code maxTokens}, for a person; null when it fits.
     * The last generated token is never fed back, so it needs no cache position.
     */
    public static String contextProblem(int promptTokens, int maxTokens, int context) {
        if (promptTokens + maxTokens - 1 > context) {
            return "prompt has " + promptTokens + " tokens; with maxTokens " + maxTokens + " it needs "
                    + (promptTokens + maxTokens - 1) + " positions but the context holds " + context
                    + " (shorten the prompt or lower maxTokens)";
        }
        return null;
    }

    /** Queues a sequence; refused at once when it cannot fit the context. */
    public void submit(Sequence s) {
        String problem = contextProblem(s.promptLength(), s.params().maxTokens(), context);
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
        waiting.add(s);
    }

    /** The next waiting sequence placed in the first free slot, to be prefilled; null when none waits or no slot is free. */
    public Sequence admit() {
        if (waiting.isEmpty() || running.size() >= maxBatch) {
            return null;
        }
        Sequence s = waiting.poll();
        s.slot = running.size();
        s.position = 0;
        s.written = new int[layers];
        running.add(s);
        return s;
    }

    /** The running batch in slot order: slot i holds element i. */
    public List<Sequence> running() {
        return List.copyOf(running);
    }

    public int runningCount() {
        return running.size();
    }

    public int waitingCount() {
        return waiting.size();
    }

    public boolean isIdle() {
        return running.isEmpty() && waiting.isEmpty();
    }

    public Set<Integer> stopTokens() {
        return stopTokens;
    }

    /**
     * Records the token each sequence sampled after its prompt ({@code prefill}) or its last token: a stop token
     * finishes it (and is not part of the completion), so does reaching maxTokens. Finished sequences leave their
     * slots at once.
     */
    public Outcome accept(List<Sequence> stepped, int[] tokens, boolean prefill) {
        List<Sequence> done = new ArrayList<>();
        for (int i = 0; i < stepped.size(); i++) {
            Sequence s = stepped.get(i);
            s.position = prefill ? s.promptLength() : s.position + 1;
            if (stopTokens.contains(tokens[i])) {
                s.finish(Sequence.FinishReason.STOP);
            } else {
                s.append(tokens[i]);
                if (s.generatedCount() >= s.params().maxTokens()) {
                    s.finish(Sequence.FinishReason.LENGTH);
                }
            }
            if (s.isFinished()) {
                done.add(s);
            }
        }
        return new Outcome(done, release(done));
    }

    /** Removes finished sequences and moves the highest-slot survivors into the holes. */
    private List<SlotMove> release(List<Sequence> done) {
        if (done.isEmpty()) {
            return List.of();
        }
        running.removeAll(done);
        List<Integer> holes = new ArrayList<>();
        for (Sequence s : done) {
            if (s.slot < running.size()) {
                holes.add(s.slot);
            }
            s.slot = -1;
        }
        holes.sort(Comparator.naturalOrder());
        List<SlotMove> moves = new ArrayList<>();
        for (int hole : holes) {
            Sequence mover = running.stream().max(Comparator.comparingInt(q -> q.slot)).orElseThrow();
            moves.add(new SlotMove(mover.slot, hole, mover.position));
            mover.slot = hole;
        }
        running.sort(Comparator.comparingInt(q -> q.slot));
        return moves;
    }
}
