package dev.skipflow.model.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.model.sampling.SamplingParams;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The scheduler alone: no model, no tensors. */
class SchedulerTest {

    static Sequence seq(String tag, int promptLength, int maxTokens) {
        return new Sequence(tag, new int[promptLength], SamplingParams.greedy(maxTokens));
    }

    @Test
    void admitsIntoFreeSlotsInArrivalOrderUpToTheBatch() {
        Scheduler s = new Scheduler(2, 64, 3, Set.of(7));
        Sequence a = seq("a", 4, 5);
        Sequence b = seq("b", 4, 5);
        Sequence c = seq("c", 4, 5);
        s.submit(a);
        s.submit(b);
        s.submit(c);
        assertSame(a, s.admit());
        assertSame(b, s.admit());
        assertNull(s.admit(), "both slots taken");
        assertEquals(List.of(a, b), s.running());
        assertEquals(0, a.slot);
        assertEquals(1, b.slot);
        assertEquals(3, a.written.length, "one count per block");
        assertEquals(1, s.waitingCount());
    }

    @Test
    void stopTokensFinishWithoutJoiningTheCompletionAndLengthFinishesToo() {
        Scheduler s = new Scheduler(4, 64, 1, Set.of(7, 9));
        Sequence a = seq("a", 3, 10);
        Sequence b = seq("b", 3, 2);
        s.submit(a);
        s.submit(b);
        s.admit();
        s.admit();
        var first = s.accept(List.of(a, b), new int[] {1, 2}, false);
        assertTrue(first.finished().isEmpty(), "1 and 2 are ordinary tokens for this tokenizer");
        var second = s.accept(List.of(a, b), new int[] {9, 5}, false);
        assertEquals(List.of(a, b), second.finished());
        assertEquals(Sequence.FinishReason.STOP, a.finishReason());
        assertEquals(List.of(1), java.util.Arrays.stream(a.generated()).boxed().toList(), "the stop token is not kept");
        assertEquals(Sequence.FinishReason.LENGTH, b.finishReason());
        assertEquals(2, b.generatedCount());
        assertTrue(s.isIdle());
    }

    @Test
    void aLeavingSequencesSlotIsRefilledByTheLastOneSoSlotsStayContiguous() {
        Scheduler s = new Scheduler(3, 64, 1, Set.of(0));
        Sequence a = seq("a", 2, 9);
        Sequence b = seq("b", 5, 9);
        Sequence c = seq("c", 7, 9);
        for (Sequence q : List.of(a, b, c)) {
            s.submit(q);
            s.admit();
            s.accept(List.of(q), new int[] {3}, true);
        }
        assertEquals(7, c.position, "a prefilled sequence's next token goes after its prompt");
        var out = s.accept(List.of(a, b, c), new int[] {0, 4, 4}, false); // a stops
        assertEquals(List.of(a), out.finished());
        assertEquals(List.of(new Scheduler.SlotMove(2, 0, 8)), out.moves(), "c moves into slot 0 with its 8 positions");
        assertEquals(List.of(c, b), s.running());
        assertEquals(0, c.slot);
        assertEquals(1, b.slot);
        assertEquals(-1, a.slot);
    }

    @Test
    void aPromptThatCannotFitIsRefusedAtSubmission() {
        Scheduler s = new Scheduler(1, 16, 1, Set.of());
        var e = assertThrows(IllegalArgumentException.class, () -> s.submit(seq("x", 10, 8)));
        assertTrue(e.getMessage().contains("needs 17 positions but the context holds 16"), e.getMessage());
        s.submit(seq("y", 10, 7));
    }
}
