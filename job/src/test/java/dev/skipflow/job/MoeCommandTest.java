package dev.skipflow.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * `./skipflow moe` as a user runs it on stories260K: the summary (expert sizes, calibration load), the checkpoint,
 * generate twice from it giving the same tokens, eval side by side with the original, the static baseline at the
 * same active parameters; bad input exits 2 with a reason and writes nothing.
 */
class MoeCommandTest {

    static final String MODEL = PruneCommandTest.MODEL;
    static final String CALIBRATION = PruneCommandTest.CALIBRATION;
    static final String VALID = PruneCommandTest.VALID;

    @Test
    void convertsIntoAFolderThatServesDeterministicallyWithSavingsAgainstTheOriginal() throws Exception {
        Path out = Path.of("target", "moe-test-" + System.nanoTime());
        Object[] r = PruneCommandTest.run("moe", "--model", MODEL, "--device", "cpu", "--active-ratio", "0.5",
                "--experts", "4", "--steps", "4", "--samples", "4", "--sample-length", "32", "--batch", "1",
                "--calibration", CALIBRATION, "--out", out.toString());
        assertEquals(0, r[0], r[2].toString());
        String summary = r[1].toString();
        assertTrue(summary.contains("ToMoE converted") && summary.contains("training: 4 steps"), summary);
        assertTrue(summary.contains("86/172"), "each expert keeps round(0.5 * 172) channels: " + summary);
        assertTrue(r[2].toString().contains("ToMoE training"), "a progress bar on stderr");
        assertTrue(Files.isRegularFile(out.resolve("skipflow.json")) && Files.isRegularFile(out.resolve("tok512.bin")));

        Object[] g1 = PruneCommandTest.run("generate", "--model", out.toString(), "--device", "cpu", "--prompt",
                "Once upon a time", "--max-tokens", "12");
        Object[] g2 = PruneCommandTest.run("generate", "--model", out.toString(), "--device", "cpu", "--prompt",
                "Once upon a time", "--max-tokens", "12");
        assertEquals(0, g1[0], g1[2].toString());
        assertFalse(g1[1].toString().isBlank());
        assertEquals(g1[1], g2[1], "the router's argmax: the same prompt gives the same tokens");

        r = PruneCommandTest.run("eval", "--model", out.toString(), "--device", "cpu", "--text", VALID, "--max-docs", "3",
                "--original", "--json");
        assertEquals(0, r[0], r[2].toString());
        JsonNode e = new ObjectMapper().readTree(r[1].toString());
        assertEquals(260_032, e.get("original").get("parameters").asLong());
        double saved = e.get("savedFraction").asDouble();
        assertTrue(saved > 0.1 && saved < 0.35, "half of every MLP, router included, the LM head whole: " + saved);
        assertEquals(e.get("original").get("executedFlops").asLong(), e.get("denseFlops").asLong());

        Path baseline = Path.of("target", "moe-static-test-" + System.nanoTime());
        r = PruneCommandTest.run("moe", "--model", MODEL, "--device", "cpu", "--baseline", "static", "--active-ratio",
                "0.5", "--samples", "3", "--sample-length", "32", "--calibration", CALIBRATION, "--out", baseline.toString());
        assertEquals(0, r[0], r[2].toString());
        assertTrue(r[1].toString().contains("static MLP channel pruning") && r[1].toString().contains("86/172"),
                r[1].toString());
    }

    @Test
    void badInputExitsWithAReasonAndWritesNothing() {
        Path out = Path.of("target", "moe-bad-" + System.nanoTime());
        String[][] cases = {
            {"--active-ratio", "1.5"}, {"--active-ratio", "0"}, {"--active-ratio", "0.5", "--experts", "1"},
            {"--active-ratio", "0.001"}, {"--active-ratio", "0.5", "--baseline", "random"},
            {"--active-ratio", "0.5", "--shared", "1"},
        };
        String[] reasons = {"--active-ratio must be in (0, 1)", "--active-ratio must be in (0, 1)",
            "--experts must be at least 2", "empty expert set", "unknown --baseline", "--shared must be in [0, 1)"};
        for (int i = 0; i < cases.length; i++) {
            String[] args = new String[cases[i].length + 6];
            System.arraycopy(new String[] {"moe", "--model", MODEL, "--device", "cpu", "--out=" + out}, 0, args, 0, 6);
            System.arraycopy(cases[i], 0, args, 6, cases[i].length);
            Object[] r = PruneCommandTest.run(args);
            assertEquals(2, r[0], String.join(" ", args));
            assertTrue(r[2].toString().contains(reasons[i]), r[2].toString());
            assertFalse(Files.exists(out), "nothing written for " + String.join(" ", cases[i]));
        }
    }
}
