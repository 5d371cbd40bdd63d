package dev.skipflow.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skipflow.job.cli.SkipflowCli;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * `./skipflow prune` as a user runs it on stories260K: the checkpoint it writes, then generate and eval side by side
 * with the original from that folder alone; bad input exits 2 with a reason and writes nothing.
 */
class PruneCommandTest {

    static final Path SHARED = Path.of(System.getProperty("skipflow.shared", "../../shared"));
    static final String MODEL = SHARED.resolve("models/stories260K/stories260K.bin").toString();
    static final String CALIBRATION = SHARED.resolve("data/tinystories-train-sample.txt").toString();
    static final String VALID = SHARED.resolve("data/tinystories-valid-sample.txt").toString();

    /** Runs the CLI; returns {exit code, stdout, stderr}. */
    static Object[] run(String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
        int code;
        try {
            code = SkipflowCli.execute(args);
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
        return new Object[] {code, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8)};
    }

    @Test
    void prunesIntoAFolderThatGenerateAndEvalLoadSideBySideWithTheOriginal() throws Exception {
        Path out = Path.of("target", "prune-test-" + System.nanoTime());
        Object[] r = run("prune", "--model", MODEL, "--device", "cpu", "--ratio", "0.2", "--out", out.toString(),
                "--calibration", CALIBRATION, "--samples", "3", "--recover-steps", "2", "--recover-batch", "1",
                "--recover-max-len", "32", "--recover-objective", "mixed", "--distill-weight", "0.25");
        assertEquals(0, r[0], r[2].toString());
        String manifest = Files.readString(out.resolve("skipflow.json"));
        assertTrue(manifest.contains("\"objective\" : \"mixed\"") && manifest.contains("\"distillWeight\" : 0.25"), manifest);
        String summary = r[1].toString();
        assertTrue(summary.contains("260,032 -> 234,688"), summary);
        assertTrue(summary.contains("6/8       3/4        144/172"), summary);
        assertTrue(summary.contains("LoRA recovery: 2 steps"), summary);
        assertTrue(Files.isRegularFile(out.resolve("skipflow.json")) && Files.isRegularFile(out.resolve("tok512.bin")));

        r = run("generate", "--model", out.toString(), "--device", "cpu", "--prompt", "Once upon a time", "--max-tokens", "8");
        assertEquals(0, r[0], r[2].toString());
        assertFalse(r[1].toString().isBlank());

        r = run("eval", "--model", out.toString(), "--device", "cpu", "--text", VALID, "--max-docs", "3", "--original",
                "--json");
        assertEquals(0, r[0], r[2].toString());
        JsonNode e = new ObjectMapper().readTree(r[1].toString());
        assertEquals(Path.of(MODEL).toAbsolutePath().normalize().toString(), e.get("original").get("model").asText());
        assertEquals(260_032, e.get("original").get("parameters").asLong());
        assertEquals(234_688, e.get("parameters").asLong());
        assertTrue(e.get("agreement").asDouble() > 0.3 && e.get("agreement").asDouble() < 1, e.toString());
        assertTrue(e.get("perplexity").asDouble() > e.get("original").get("perplexity").asDouble(), e.toString());
        double saved = e.get("savedFraction").asDouble();
        assertTrue(saved > 0.05 && saved < 0.15, "3 of 5 blocks lose 18.6%, the LM head is whole: " + saved);
        assertEquals(e.get("original").get("executedFlops").asLong(), e.get("denseFlops").asLong(),
                "dense FLOPs are the original's");
    }

    @Test
    void badInputExitsWithAReasonAndWritesNothing() throws Exception {
        Path out = Path.of("target", "prune-bad-" + System.nanoTime());
        String[][] cases = {
            {"--ratio", "1.2"}, {"--ratio", "0.9"}, {"--ratio", "0.2", "--blocks", "2-7"}, {"--ratio", "0.2", "--importance", "taylor"},
            {"--ratio", "0.2", "--recover-objective", "kl"},
            {"--ratio", "0.2", "--recover-objective", "mixed", "--distill-weight", "1"},
        };
        String[] reasons = {"--ratio must be in (0, 1)", "no attention head", "outside the model's blocks 0-4", "--importance must be",
            "--recover-objective must be next-token, distill or mixed", "--distill-weight must be in (0, 1)"};
        for (int i = 0; i < cases.length; i++) {
            String[] args = new String[cases[i].length + 6];
            System.arraycopy(new String[] {"prune", "--model", MODEL, "--device", "cpu", "--out=" + out}, 0, args, 0, 6);
            System.arraycopy(cases[i], 0, args, 6, cases[i].length);
            Object[] r = run(args);
            assertEquals(2, r[0], String.join(" ", args));
            assertTrue(r[2].toString().contains(reasons[i]), r[2].toString());
            assertFalse(Files.exists(out), "nothing written for " + String.join(" ", cases[i]));
        }
        Files.createDirectories(out);
        Object[] r = run("prune", "--model", MODEL, "--device", "cpu", "--ratio", "0.2", "--importance", "l2", "--out",
                out.toString());
        assertEquals(2, r[0]);
        assertTrue(r[2].toString().contains("already exists; pass --force"), r[2].toString());
        r = run("prune", "--model", MODEL, "--device", "cpu", "--ratio", "0.2", "--importance", "l2", "--out",
                out.toString(), "--force");
        assertEquals(0, r[0], r[2].toString());
        assertTrue(Files.isRegularFile(out.resolve("model.safetensors")), "an empty folder is replaced with --force");
    }
}
