package dev.skipflow.model.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.skipflow.model.ScalarLlama;
import dev.skipflow.model.TestModels;
import java.nio.file.Path;
import java.util.List;
import dev.skipflow.model.data.Documents;
import org.junit.jupiter.api.Test;

class PerplexityEvaluatorTest {

    @Test
    void perplexityMatchesTheScalarReferenceComputedInDouble() {
        Path text = TestModels.shared().resolve("data/wikitext2-test.txt");
        List<int[]> docs = Documents.read(text, TestModels.tokenizer(), 96, 12);
        assertEquals(12, docs.size());
        double nll = 0;
        long predicted = 0;
        for (int[] doc : docs) {
            ScalarLlama ref = new ScalarLlama(TestModels.weights());
            for (int t = 0; t + 1 < doc.length; t++) {
                float[] logits = ref.forward(doc[t], t);
                nll -= PerplexityEvaluator.logProb(logits, 0, logits.length, doc[t + 1]);
                predicted++;
            }
        }
        var r = new PerplexityEvaluator(TestModels.model()).evaluate(docs, i -> { });
        assertEquals(predicted, r.predictedTokens());
        assertEquals(nll, r.nll(), nll * 1e-6);
        assertEquals(Math.exp(nll / predicted), r.perplexity(), 1e-6 * r.perplexity());
    }

    @Test
    void documentsFollowDesignSection6() {
        Path text = TestModels.shared().resolve("data/tinystories-valid-sample.txt");
        List<int[]> docs = Documents.read(text, TestModels.tokenizer(), 256, 0);
        assertEquals(19, docs.size(), "every non-empty line is a document");
        for (int[] d : docs) {
            assertEquals(1, d[0], "BOS first");
            assertEquals(256, d.length, "all sample stories exceed 256 tokens and are truncated");
        }
        assertEquals(3, Documents.read(text, TestModels.tokenizer(), 256, 3).size());
        assertThrows(IllegalArgumentException.class,
                () -> Documents.read(Path.of("no/such/file.txt"), TestModels.tokenizer(), 256, 0));
    }

    @Test
    void medianSpeedupIsThePerDocumentMedian() {
        assertEquals(2.0, PerplexityEvaluator.medianRatio(List.of(4L, 9L, 2L), List.of(2L, 3L, 2L)));
        assertEquals(2.5, PerplexityEvaluator.medianRatio(List.of(4L, 9L, 2L, 100L), List.of(2L, 3L, 2L, 1L)));
        assertEquals(1.0, PerplexityEvaluator.medianRatio(List.of(), List.of()));
    }
}
