package dev.skipflow.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.skipflow.job.cli.SkipflowCli;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * `./skipflow report` on the real model: the files it writes and what they say, with a router and an exit
 * classifier trained (briefly) by train-router and train-exit into its artifacts folder.
 */
class ReportCommandTest {

    static final Path SHARED = Path.of(System.getProperty("skipflow.shared", "../../shared"));
    static final String MODEL = SHARED.resolve("models/stories260K/stories260K.bin").toString();
    static final String CALIBRATION = SHARED.resolve("data/tinystories-train-sample.txt").toString();
    static Path artifacts;

    @BeforeAll
    static void trainTinyArtifacts() {
        System.setProperty("java.awt.headless", "true");
        artifacts = Path.of("target", "report-artifacts-" + System.nanoTime());
        assertEquals(0, SkipflowCli.execute("train-router", "--model", MODEL, "--device", "cpu", "--calibration", CALIBRATION,
                "--sparsity", "0.2", "--steps", "4", "--docs", "6", "--docs-per-step", "2", "--search-docs", "2",
                "--max-len", "32", "--search-max-len", "32", "--population", "2", "--generations", "1", "--oracle-docs", "2",
                "--out", artifacts.resolve("router-0.20.json").toString()));
        assertEquals(0, SkipflowCli.execute("train-exit", "--model", MODEL, "--device", "cpu", "--calibration", CALIBRATION,
                "--docs", "16", "--max-len", "64", "--target-agreement", "0.9",
                "--out", artifacts.resolve("exit.json").toString()));
    }

    @Test
    void writesEveryMethodWithItsDenseSideBySide() throws Exception {
        Path out = Path.of("target", "report-test-" + System.nanoTime());
        int code = SkipflowCli.execute("report", "--out", out.toString(), "--model", MODEL,
                "--text", SHARED.resolve("data/tinystories-valid-sample.txt").toString(), "--artifacts", artifacts.toString(),
                "--max-docs", "3", "--max-len", "64", "--sparsities", "0.2",
                "--methods", "static,shortgpt,learned,exit,learned+exit", "--exit-thresholds", "1e9,-1e9",
                "--speed-model", "none", "--device", "cpu");
        assertEquals(0, code);
        JsonNode r = new ObjectMapper().readTree(out.resolve("results.json").toFile());
        List<JsonNode> points = new ArrayList<>();
        r.get("points").forEach(points::add);
        // dense, static, shortgpt, learned, exit at its own threshold and at 2 swept ones, learned + exit
        assertEquals(8, points.size(), r.toPrettyString());
        JsonNode dense = points.get(0);
        assertEquals("dense", dense.get("method").asText());
        assertEquals(1.0, dense.get("agreement").asDouble());
        for (JsonNode p : points.subList(1, points.size())) {
            assertEquals(dense.get("perplexity").asDouble(), p.get("densePerplexity").asDouble(), 1e-9);
            assertTrue(p.get("speedup").asDouble() > 0, p.toString());
        }
        JsonNode learned = points.get(3);
        assertEquals("learned", learned.get("method").asText());
        assertEquals(0.2, learned.get("skippedFraction").asDouble(), 0.03, learned.toString());
        assertTrue(learned.get("agreement").asDouble() < 1.0, learned.toString());

        // an exit classifier that never accepts is the dense model plus the cost of its probes
        JsonNode never = points.get(5);
        assertTrue(never.get("configuration").asText().startsWith("exit threshold 1.00e+09"), never.toString());
        assertEquals(dense.get("perplexity").asDouble(), never.get("perplexity").asDouble(), 1e-9);
        assertEquals(1.0, never.get("agreement").asDouble());
        assertEquals(0.0, never.get("skippedFraction").asDouble());
        assertTrue(never.get("savedFraction").asDouble() < 0, never.toString());
        // one that always accepts stops every token at its first probe
        JsonNode always = points.get(6);
        assertTrue(always.get("skippedFraction").asDouble() > 0.1, always.toString());
        assertTrue(always.get("agreement").asDouble() < 1.0, always.toString());

        JsonNode both = points.get(7);
        assertEquals("learned+exit", both.get("method").asText());
        assertTrue(both.get("skippedFraction").asDouble() >= learned.get("skippedFraction").asDouble() - 1e-9, both.toString());

        assertTrue(r.get("machine").get("cores").asInt() >= 1);
        assertTrue(r.get("artifacts").get("router-0.20.json").asText().startsWith("read from"), r.get("artifacts").toString());
        String md = Files.readString(out.resolve("RESULTS.md"));
        assertTrue(md.contains("Generated by `./skipflow report --out"), md);
        assertTrue(md.contains("| static | static [0.20, 0.20, 0.20, 0.20, 0.20] |"), md);
        assertTrue(md.contains("## Trained artifacts"), md);
        for (String plot : new String[] {"perplexity", "agreement", "speedup"}) {
            var image = ImageIO.read(out.resolve(plot + "-tinystories-valid-sample.png").toFile());
            assertTrue(image.getWidth() >= 800 && image.getHeight() >= 500, plot);
        }
    }

    @Test
    void scoresTheContinuationAsServedUnderTheServingProtocol() throws Exception {
        Path out = Path.of("target", "report-serving-" + System.nanoTime());
        assertEquals(0, SkipflowCli.execute("report", "--out", out.toString(), "--model", MODEL,
                "--text", SHARED.resolve("data/tinystories-valid-sample.txt").toString(), "--artifacts", artifacts.toString(),
                "--max-docs", "3", "--max-len", "64", "--sparsities", "0.2", "--methods", "static,exit",
                "--exit-thresholds", "1e9", "--speed-model", "none", "--device", "cpu", "--protocol", "serving"));
        JsonNode r = new ObjectMapper().readTree(out.resolve("results.json").toFile());
        assertEquals("serving, prompts routed", r.get("protocol").asText());
        List<JsonNode> points = new ArrayList<>();
        r.get("points").forEach(points::add);
        assertEquals(4, points.size(), "dense, static, exit at its own threshold and at one swept: " + r.toPrettyString());
        assertEquals(1.0, points.get(0).get("greedyAgreement").asDouble());
        for (JsonNode p : points) {
            double g = p.get("greedyAgreement").asDouble();
            assertTrue(g >= 0 && g <= 1, p.toString());
        }
        // prompts routed, decode dense: only prompt token-blocks are skipped, a share of all below the router's 20 %
        JsonNode routed = points.get(1);
        assertEquals("static", routed.get("method").asText());
        double skipped = routed.get("skippedFraction").asDouble();
        assertTrue(skipped > 0.03 && skipped < 0.15, routed.toString());
        // an exit classifier that never accepts runs every block: dense figures, the cost of its probes
        JsonNode never = points.get(3);
        assertEquals(1.0, never.get("agreement").asDouble(), never.toString());
        assertEquals(0.0, never.get("skippedFraction").asDouble(), never.toString());
        assertTrue(never.get("savedFraction").asDouble() < 0, never.toString());
        String md = Files.readString(out.resolve("RESULTS.md"));
        assertTrue(md.startsWith("# Savings report (serving protocol)"), md);
        assertTrue(md.contains("| top-1 agreement | greedy@32 | speed-up |"), md);
        // the prefill protocol decodes nothing, so routing decoding tokens is refused there
        Path refused = Path.of("target", "report-serving-refused-" + System.nanoTime());
        assertNotEquals(0, SkipflowCli.execute("report", "--out", refused.toString(), "--model", MODEL, "--route", "all",
                "--methods", "static", "--speed-model", "none"));
        assertFalse(Files.exists(refused));
    }

    @Test
    void plotsTheRankOfEveryLayerOfALowRankCheckpoint() throws Exception {
        Path ckpt = Path.of("target", "report-lowrank-" + System.nanoTime());
        assertEquals(0, SkipflowCli.execute("lowrank", "--model", MODEL, "--device", "cpu", "--method", "uniform",
                "--params-ratio", "0.5", "--crossover", "params", "--svd-cache", "none", "--out", ckpt.toString()));
        String[] common = {"--text", SHARED.resolve("data/tinystories-valid-sample.txt").toString(), "--max-docs", "2",
            "--max-len", "32", "--methods", "static", "--sparsities", "0.2", "--speed-model", "none", "--device", "cpu"};
        // the report's model is the low-rank checkpoint: its ranks are plotted
        Path out = Path.of("target", "report-ranks-" + System.nanoTime());
        List<String> args = new ArrayList<>(List.of("report", "--out", out.toString(), "--model", ckpt.toString()));
        args.addAll(List.of(common));
        assertEquals(0, SkipflowCli.execute(args.toArray(String[]::new)));
        var image = ImageIO.read(out.resolve("ranks.png").toFile());
        assertTrue(image.getWidth() >= 800 && image.getHeight() >= 500);
        String md = Files.readString(out.resolve("RESULTS.md"));
        assertTrue(md.contains("## Low-rank layers (") && md.contains("![ranks](ranks.png)"), md);
        assertTrue(md.contains("| block | q | k | v | o | gate | up | down |"), md);
        JsonNode layers = new ObjectMapper().readTree(out.resolve("results.json").toFile()).get("lowrank").get("layers");
        assertEquals(5 * 7, layers.size(), layers.toString()); // stories260K: 5 blocks of 7 maps
        for (JsonNode l : layers) {
            assertTrue(l.get("rank").asInt() >= 1 && l.get("rank").asInt() <= l.get("fullRank").asInt(), l.toString());
        }
        // or the dense model with --lowrank naming the checkpoint
        Path out2 = Path.of("target", "report-ranks-given-" + System.nanoTime());
        args = new ArrayList<>(List.of("report", "--out", out2.toString(), "--model", MODEL, "--lowrank", ckpt.toString()));
        args.addAll(List.of(common));
        assertEquals(0, SkipflowCli.execute(args.toArray(String[]::new)));
        assertTrue(Files.size(out2.resolve("ranks.png")) > 1000);
        // a dense report has no rank plot; --lowrank naming something else is refused before anything is written
        Path out3 = Path.of("target", "report-ranks-bad-" + System.nanoTime());
        args = new ArrayList<>(List.of("report", "--out", out3.toString(), "--model", MODEL, "--lowrank", "target"));
        args.addAll(List.of(common));
        assertNotEquals(0, SkipflowCli.execute(args.toArray(String[]::new)));
        assertFalse(Files.exists(out3));
    }

    @Test
    void reportsEachModelInItsOwnFolderWithTheBundlesMadeFromIt() throws Exception {
        Path root = Path.of("target", "report-models-" + System.nanoTime());
        Path bundle = root.resolve("bundle");
        assertEquals(0, SkipflowCli.execute("stack", "--model", MODEL, "--device", "cpu", "--steps", "prune:0.3",
                "--prune-args", "--importance l2", "--router", "0.3", "--router-args", "--steps 4 --docs 6 "
                        + "--docs-per-step 2 --search-docs 2 --max-len 32 --search-max-len 32 --generations 0 --oracle-docs 2",
                "--calibration", CALIBRATION, "--out", bundle.toString()));
        String deep = SHARED.resolve("models/stories-deep16/stories-deep16.bin").toString();
        Path out = root.resolve("report");
        assertEquals(0, SkipflowCli.execute("report", "--out", out.toString(), "--model", MODEL, "--model", deep,
                "--bundle", bundle.toString(), "--text", SHARED.resolve("data/tinystories-valid-sample.txt").toString(),
                "--max-docs", "3", "--max-len", "64", "--sparsities", "0.2", "--methods", "static",
                "--speed-model", "none", "--device", "cpu"));
        String index = Files.readString(out.resolve("RESULTS.md"));
        assertTrue(index.contains("stories260K/RESULTS.md") && index.contains("stories-deep16/RESULTS.md"), index);
        JsonNode small = new ObjectMapper().readTree(out.resolve("stories260K/results.json").toFile());
        JsonNode deepResults = new ObjectMapper().readTree(out.resolve("stories-deep16/results.json").toFile());
        assertEquals(2, deepResults.get("points").size(), "dense and static on deep16");
        assertFalse(deepResults.has("bundles"), "the bundle was made from stories260K");
        List<JsonNode> rows = new ArrayList<>();
        small.get("bundles").forEach(rows::add);
        assertEquals(List.of("compression only", "+ router"), rows.stream().map(r -> r.get("configuration").asText())
                .toList());
        for (JsonNode r : rows) {
            assertTrue(r.get("compression").asDouble() > 0.05, r.toString());
            assertEquals(r.get("savedFraction").asDouble(), r.get("compression").asDouble() + r.get("routing").asDouble()
                    + r.get("exit").asDouble(), 1e-9, r.toString());
            assertTrue(r.get("agreement").asDouble() > 0 && r.get("agreement").asDouble() <= 1, r.toString());
        }
        assertTrue(rows.get(1).get("routing").asDouble() > 0, "the bundle's router skips: " + rows.get(1));
        assertTrue(Files.readString(out.resolve("stories260K/RESULTS.md")).contains("Stacks against the original"));
        assertTrue(ImageIO.read(out.resolve("stories260K/stacks-agreement-tinystories-valid-sample.png").toFile())
                .getWidth() > 0);

        Path refused = root.resolve("refused");
        assertNotEquals(0, SkipflowCli.execute("report", "--out", refused.toString(), "--model", deep, "--bundle",
                bundle.toString(), "--bundles-only", "--device", "cpu"));
        assertFalse(Files.exists(refused), "a bundle made from another model is refused before anything runs");
    }

    @Test
    void refusesMissingTextAndUnknownMethodBeforeWritingAnything() {
        Path out = Path.of("target", "report-missing-" + System.nanoTime());
        assertNotEquals(0, SkipflowCli.execute("report", "--out", out.toString(), "--model", MODEL,
                "--text", "target/no-such-text.txt", "--speed-model", "none", "--methods", "static"));
        assertNotEquals(0, SkipflowCli.execute("report", "--out", out.toString(), "--model", MODEL,
                "--methods", "static,telepathy", "--speed-model", "none"));
        assertFalse(Files.exists(out.resolve("results.json")));
    }
}
