package dev.skipflow.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skipflow.model.routing.DecodeCalibration;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** `./skipflow train-router --recalibrate`: new decode cuts for an artifact, its router kept; and its refusals. */
class TrainRouterCommandTest {

    /** The report's 20 % router for stories260K; {@link #old} turns it into an artifact from before the buckets. */
    static final Path REPORT_ROUTER = Path.of("../docs/report/artifacts/router-0.20.json");

    /** An artifact as written before the position buckets: one decode cut per block, no route field. */
    static Path old() throws Exception {
        ObjectMapper json = new ObjectMapper();
        com.fasterxml.jackson.databind.node.ObjectNode a =
                (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(REPORT_ROUTER.toFile());
        int blocks = a.get("schedule").size();
        com.fasterxml.jackson.databind.node.ArrayNode cuts = json.createArrayNode();
        for (int l = 0; l < blocks; l++) {
            cuts.add(a.get("decodeThresholds").get(l));
        }
        a.set("decodeThresholds", cuts);
        a.remove("route");
        Path file = Files.createDirectories(Path.of("target/train-router-test")).resolve("before-buckets.json");
        json.writeValue(file.toFile(), a);
        return file;
    }

    @Test
    void recalibrateWritesCutsPerBucketAndKeepsTheRouter() throws Exception {
        ObjectMapper json = new ObjectMapper();
        Path old = old();
        JsonNode before = json.readTree(old.toFile());
        int blocks = before.get("schedule").size();
        assertEquals(blocks, before.get("decodeThresholds").size(), "the fixture has one cut per block");
        Path dir = Files.createDirectories(Path.of("target/train-router-test"));
        Path out = dir.resolve("recalibrated.json");
        Files.deleteIfExists(out);

        Object[] r = PruneCommandTest.run("train-router", "--model", PruneCommandTest.MODEL, "--device", "cpu",
                "--calibration", PruneCommandTest.CALIBRATION, "--recalibrate", old.toString(), "--out", out.toString(),
                "--docs", "8", "--search-docs", "6", "--search-max-len", "96");
        assertEquals(0, r[0], r[2].toString());
        JsonNode after = json.readTree(out.toFile());
        assertEquals(blocks * DecodeCalibration.buckets(), after.get("decodeThresholds").size());
        assertEquals(before.get("mlp"), after.get("mlp"), "router weights kept");
        assertEquals(before.get("schedule"), after.get("schedule"), "prefill schedule kept");
        assertEquals(before.get("model"), after.get("model"));
        assertEquals("all", after.get("route").asText(), "an artifact without a route is served on all tokens");
        assertTrue(after.get("training").asText().contains("calibrated again on 6 held-out documents"),
                after.get("training").asText());
        assertFalse(after.has("decodeSchedule"));

        // a decode share of its own: a decode schedule of that mean beside the kept prefill schedule
        r = PruneCommandTest.run("train-router", "--model", PruneCommandTest.MODEL, "--device", "cpu",
                "--calibration", PruneCommandTest.CALIBRATION, "--recalibrate", old.toString(), "--out", out.toString(),
                "--docs", "8", "--search-docs", "6", "--search-max-len", "96", "--decode-sparsity", "0.05");
        assertEquals(0, r[0], r[2].toString());
        after = json.readTree(out.toFile());
        double mean = 0;
        for (JsonNode s : after.get("decodeSchedule")) {
            mean += s.asDouble() / blocks;
        }
        assertEquals(0.05, mean, 1e-6);
        assertEquals(before.get("schedule"), after.get("schedule"));
    }

    @Test
    void recalibrateRefusesWhatItCannotDo() throws Exception {
        Path out = Files.createDirectories(Path.of("target/train-router-test")).resolve("refused.json");
        Files.deleteIfExists(out);
        String[] base = {"train-router", "--device", "cpu", "--calibration", PruneCommandTest.CALIBRATION,
            "--recalibrate", old().toString(), "--out", out.toString(), "--docs", "4", "--search-docs", "4"};
        // the schedule is the artifact's
        Object[] r = PruneCommandTest.run(concat(base, "--model", PruneCommandTest.MODEL, "--sparsity", "0.3"));
        assertNotEquals(0, r[0]);
        assertTrue(r[2].toString().contains("keeps the artifact's schedule"), r[2].toString());
        // another model
        r = PruneCommandTest.run(concat(base, "--model",
                PruneCommandTest.SHARED.resolve("models/stories-deep16/stories-deep16.bin").toString()));
        assertNotEquals(0, r[0]);
        assertTrue(r[2].toString().contains("not for this one"), r[2].toString());
        // a decode share for a router served on prompts only
        r = PruneCommandTest.run(concat(base, "--model", PruneCommandTest.MODEL, "--route", "prompt",
                "--decode-sparsity", "0.1"));
        assertNotEquals(0, r[0]);
        assertTrue(r[2].toString().contains("needs --route all"), r[2].toString());
        // a route picocli does not know
        r = PruneCommandTest.run(concat(base, "--model", PruneCommandTest.MODEL, "--route", "sideways"));
        assertNotEquals(0, r[0]);
        assertTrue(r[2].toString().contains("expected one of [prompt, all]"), r[2].toString());
        // the mixed-rank guide ranks each token once
        r = PruneCommandTest.run("train-router", "--model", PruneCommandTest.MODEL, "--sparsity", "0.2", "--guide",
                "mixed", "--out", out.toString());
        assertNotEquals(0, r[0]);
        assertTrue(r[2].toString().contains("add --per-token"), r[2].toString());
        // and without --recalibrate, --sparsity is still required
        r = PruneCommandTest.run("train-router", "--model", PruneCommandTest.MODEL, "--out", out.toString());
        assertNotEquals(0, r[0]);
        assertTrue(r[2].toString().contains("--sparsity"), r[2].toString());
        assertFalse(Files.exists(out), "nothing written");
    }

    private static String[] concat(String[] a, String... b) {
        String[] all = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }
}
