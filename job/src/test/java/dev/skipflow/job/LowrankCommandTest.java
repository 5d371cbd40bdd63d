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
 * `./skipflow lowrank` as a user runs it on stories260K: the checkpoint it writes (with its rank plot), then generate
 * and eval side by side with the original from that folder alone; bad input exits 2 with a reason and writes nothing.
 */
class LowrankCommandTest {

    static final String MODEL = PruneCommandTest.MODEL;

    @Test
    void writesALowRankFolderThatGenerateAndEvalLoadSideBySideWithTheOriginal() throws Exception {
        Path out = Path.of("target", "lowrank-test-" + System.nanoTime());
        Path cache = Path.of("target", "lowrank-test-svd-" + System.nanoTime());
        Object[] r = PruneCommandTest.run("lowrank", "--model", MODEL, "--device", "cpu", "--params-ratio", "0.5",
                "--out", out.toString(), "--calibration", PruneCommandTest.CALIBRATION, "--samples", "4",
                "--sample-length", "32", "--steps", "3", "--docs-per-step", "2", "--crossover", "params",
                "--svd-cache", cache.toString());
        assertEquals(0, r[0], r[2].toString());
        String summary = r[1].toString();
        assertTrue(summary.contains("linear parameters: 226,560; budget 113,280"), summary);
        assertTrue(summary.contains("soft thresholds: 3 steps"), summary);
        assertTrue(summary.contains("of 35 maps factored"), summary);
        assertTrue(Files.isRegularFile(out.resolve("skipflow.json")) && Files.isRegularFile(out.resolve("tok512.bin"))
                && Files.size(out.resolve("ranks.png")) > 1000);
        assertTrue(Files.isRegularFile(cache.resolve("svd.json")), "the SVDs are cached");

        r = PruneCommandTest.run("generate", "--model", out.toString(), "--device", "cpu", "--prompt", "Once upon a time",
                "--max-tokens", "8");
        assertEquals(0, r[0], r[2].toString());
        assertFalse(r[1].toString().isBlank());

        r = PruneCommandTest.run("eval", "--model", out.toString(), "--device", "cpu", "--text", PruneCommandTest.VALID,
                "--max-docs", "3", "--original", "--json");
        assertEquals(0, r[0], r[2].toString());
        JsonNode e = new ObjectMapper().readTree(r[1].toString());
        assertEquals(260_032, e.get("original").get("parameters").asLong());
        assertTrue(e.get("parameters").asLong() < 160_000, e.toString());
        double saved = e.get("savedFraction").asDouble();
        assertTrue(saved > 0.2 && saved < 0.5, "half the blocks' linear FLOPs, the LM head whole: " + saved);
        assertEquals(e.get("original").get("executedFlops").asLong(), e.get("denseFlops").asLong(),
                "dense FLOPs are the original's");
    }

    @Test
    void badInputExitsWithAReasonAndWritesNothing() throws Exception {
        Path out = Path.of("target", "lowrank-bad-" + System.nanoTime());
        String[][] cases = {
            {"--params-ratio", "0"}, {"--params-ratio", "1.5"}, {"--params-ratio", "0.01"},
            {"--params-ratio", "0.5", "--method", "svd"}, {"--params-ratio", "0.5", "--crossover", "fast"},
        };
        String[] reasons = {"must be in (0, 1]", "must be in (0, 1]", "cannot be met: even rank 1", "--method must be",
            "--crossover must be"};
        for (int i = 0; i < cases.length; i++) {
            String[] args = new String[cases[i].length + 9];
            System.arraycopy(new String[] {"lowrank", "--model", MODEL, "--device", "cpu", "--steps=1",
                "--svd-cache", "none", "--out=" + out}, 0, args, 0, 9);
            System.arraycopy(cases[i], 0, args, 9, cases[i].length);
            Object[] r = PruneCommandTest.run(args);
            assertEquals(2, r[0], String.join(" ", args) + "\n" + r[2]);
            assertTrue(r[2].toString().contains(reasons[i]), r[2].toString());
            assertFalse(Files.exists(out), "nothing written for " + String.join(" ", cases[i]));
        }
        // an SVD cache made for another model
        Path cache = Path.of("target", "lowrank-stale-" + System.nanoTime());
        Files.createDirectories(cache);
        Files.writeString(cache.resolve("svd.json"), "{\"fingerprint\": \"0123456789abcdef\", \"source\": \"old.bin\"}");
        Object[] r = PruneCommandTest.run("lowrank", "--model", MODEL, "--device", "cpu", "--method", "uniform",
                "--params-ratio", "0.5", "--svd-cache", cache.toString(), "--out", out.toString());
        assertEquals(2, r[0], r[2].toString());
        assertTrue(r[2].toString().contains("the model changed since the cache was made")
                && r[2].toString().contains("--refresh-svd"), r[2].toString());
        assertFalse(Files.exists(out), "nothing written for a stale cache");
    }
}
