package dev.skipflow.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.skipflow.job.cli.SkipflowCli;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** `./skipflow stack` refuses what would fail later before any work, and writes nothing then. */
class StackCommandTest {

    static final String MODEL = Path.of(System.getProperty("skipflow.shared", "../../shared"))
            .resolve("models/stories260K/stories260K.bin").toString();

    /** Runs the CLI, returning its exit code and what it printed on stderr. */
    static String[] run(String... args) {
        PrintStream err = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            int code = SkipflowCli.execute(args);
            return new String[] {Integer.toString(code), captured.toString(StandardCharsets.UTF_8)};
        } finally {
            System.setErr(err);
        }
    }

    @Test
    void refusesBeforeAnyWorkWhatAPartWouldRefuse() throws Exception {
        Path root = Files.createDirectories(Path.of("target", "stack-refusals-" + System.nanoTime()));
        Path out = root.resolve("bundle");
        String[][] cases = {
            // --router without a value, then --exit: both flags, the value of --prune-args taken whatever it looks like
            {"--steps", "prune:0.2", "--router", "--exit", "--prune-args=--no-such-option", "prune would not accept it"},
            {"--steps", "prune:0.2", "--router", "--router-args", "--steps x", "train-router would not accept it"},
            {"--steps", "prune:0.2", "--exit-args", "--docs 5", "--exit-args given without --exit"},
            {"--steps", "prune:0.2", "--prune-args", "--ratio 0.5", "may not set --ratio"},
            {"--steps", "prune:0.2,moe:0.5,lowrank:0.7", "do not compose"},
            {"--steps", "prune:0.2", "--lowrank-args", "--steps 3", "--steps has no lowrank"},
            {"--steps", "prune:0.2", "--router", "1.5", "sparsity must be in (0, 1)"},
        };
        for (String[] c : cases) {
            String[] args = new String[c.length + 5];
            args[0] = "stack";
            args[1] = "--model";
            args[2] = MODEL;
            System.arraycopy(c, 0, args, 3, c.length - 1);
            args[c.length + 2] = "--out";
            args[c.length + 3] = out.toString();
            args[c.length + 4] = "--device=cpu";
            String[] r = run(args);
            assertEquals("2", r[0], String.join(" ", args) + "\n" + r[1]);
            assertTrue(r[1].contains(c[c.length - 1]), String.join(" ", args) + "\n" + r[1]);
            assertFalse(Files.exists(out));
            try (var left = Files.list(root)) {
                assertEquals(0, left.count(), "no staging folder left");
            }
        }
    }
}
