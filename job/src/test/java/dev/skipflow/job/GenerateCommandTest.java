package dev.skipflow.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** `./skipflow generate` adaptive, and its fluency check on the demo prompts, on the real model. */
class GenerateCommandTest {

    @Test
    void fluencyPrintsEveryDemoPromptDenseAndAdaptive() throws Exception {
        Object[] r = PruneCommandTest.run("generate", "--model", PruneCommandTest.MODEL, "--device", "cpu", "--fluency",
                "--baseline", "static", "--sparsity", "0.4", "--max-tokens", "12", "--json");
        assertEquals(0, r[0], r[2].toString());
        JsonNode f = new ObjectMapper().readTree(r[1].toString());
        assertEquals(5, f.get("pairs").size(), "the demo's five sample prompts");
        double sum = 0;
        for (JsonNode p : f.get("pairs")) {
            assertTrue(p.get("dense").get("tokens").size() <= 12 && p.get("dense").get("tokens").size() > 0, p.toString());
            assertEquals(0.0, p.get("dense").get("savedFraction").asDouble(), 1e-12);
            assertTrue(p.get("adaptive").get("savedFraction").asDouble() > 0, "the router skips prompt tokens: " + p);
            sum += p.get("adaptive").get("repeated").asDouble();
        }
        assertEquals(sum / 5, f.get("adaptiveRepeated").asDouble(), 1e-12);

        // text output: one block per prompt, then the means
        r = PruneCommandTest.run("generate", "--model", PruneCommandTest.MODEL, "--device", "cpu", "--fluency",
                "--baseline", "static", "--sparsity", "0.4", "--max-tokens", "8");
        assertEquals(0, r[0], r[2].toString());
        assertTrue(r[1].toString().contains("prompt: Once upon a time") && r[1].toString().contains("mean seq-rep-4"),
                r[1].toString());
        // nothing adaptive to compare, or a prompt given with it: refused
        assertNotEquals(0, PruneCommandTest.run("generate", "--model", PruneCommandTest.MODEL, "--device", "cpu",
                "--fluency")[0]);
        assertNotEquals(0, PruneCommandTest.run("generate", "--model", PruneCommandTest.MODEL, "--device", "cpu",
                "--fluency", "--baseline", "static", "--prompt", "Hi")[0]);
    }

    @Test
    void oneAdaptiveGenerationRunsWithARouter() {
        Object[] r = PruneCommandTest.run("generate", "--model", PruneCommandTest.MODEL, "--device", "cpu", "--prompt",
                "Once upon a time", "--max-tokens", "8", "--baseline", "static", "--sparsity", "0.4");
        assertEquals(0, r[0], r[2].toString());
        assertTrue(!r[1].toString().isBlank());
    }
}
