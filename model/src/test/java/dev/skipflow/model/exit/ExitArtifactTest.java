package dev.skipflow.model.exit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.skipflow.model.spec.LlamaConfig;
import dev.skipflow.model.io.ModelFormatException;
import dev.skipflow.model.SyntheticModels;
import dev.skipflow.model.TestModels;
import dev.skipflow.model.engine.BatchEngine;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.data.Documents;
import dev.skipflow.model.flops.FlopAccount;
import dev.skipflow.model.sampling.SamplingParams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Training the exit classifier on calibration text, its artifact, and generation with it. */
class ExitArtifactTest {

    static ExitTrainer.Result trained;

    @TempDir
    Path dir;

    @BeforeAll
    static void train() {
        List<int[]> docs = Documents.read(TestModels.shared().resolve("data/tinystories-train-sample.txt"),
                TestModels.tokenizer(), 96, 60);
        trained = ExitTrainer.train(TestModels.model(), "stories260K", docs,
                new ExitTrainer.Options(0.9, 0.3, 1, 0, 0, 1), i -> { }, m -> { });
    }

    @Test
    void theSvmLearnsThatConfidentProbesAreSettledAndTheThresholdMeetsTheTargetOnHeldOutText() {
        ExitClassifier c = trained.artifact().classifier();
        assertTrue(trained.trainAccuracy() > 0.6, "training accuracy " + trained.trainAccuracy());
        assertTrue(trained.positives() > 0 && trained.positives() < trained.trainExamples());
        assertTrue(c.weights()[0] > 0, "a higher top prob makes an exit more likely: " + c.weights()[0]);
        ExitTrainer.PolicyResult r = trained.policies().get(0);
        assertEquals(1, trained.policies().size(), "probe policy forced to block 0, every block");
        assertTrue(r.agreement() >= 0.9, "held-out agreement " + r.agreement());
        assertTrue(r.layersSaved() > 0, "some layers saved at 90% agreement: " + r.layersSaved());
        assertEquals(r.threshold(), c.threshold());
    }

    @Test
    void theArtifactRoundTripsAndIsRefusedForAnotherModelOrAMalformedFile() throws Exception {
        ExitArtifact a = trained.artifact();
        Path file = dir.resolve("exit.json");
        a.save(file);
        ExitArtifact b = ExitArtifact.load(file);
        assertEquals(a.classifier(), b.classifier());
        assertEquals(TestModels.model().fingerprint(), b.modelFingerprint());
        assertEquals(a.classifier(), b.classifierFor(TestModels.model(), file));

        LlamaConfig other = LlamaConfig.llama2c(64, 172, 5, 8, 4, 512, 512, true);
        try (LlamaModel stranger = new LlamaModel(SyntheticModels.weights(other, 1L, "other"), Device.cpu())) {
            var e = assertThrows(ModelFormatException.class, () -> b.classifierFor(stranger, file));
            assertTrue(e.getMessage().contains("trained for model stories260K"), e.getMessage());
        }
        Files.writeString(dir.resolve("router.json"), "{\"format\": \"skipflow-router\", \"version\": 1}");
        assertTrue(assertThrows(ModelFormatException.class, () -> ExitArtifact.load(dir.resolve("router.json")))
                .getMessage().contains("not an exit-classifier artifact"));
        Files.writeString(dir.resolve("cut.json"), Files.readString(file).substring(0, 150));
        assertThrows(ModelFormatException.class, () -> ExitArtifact.load(dir.resolve("cut.json")));
        Files.writeString(dir.resolve("v2.json"), Files.readString(file).replace("\"version\" : 1", "\"version\" : 2"));
        assertTrue(assertThrows(ModelFormatException.class, () -> ExitArtifact.load(dir.resolve("v2.json")))
                .getMessage().contains("version 2"));
        Files.writeString(dir.resolve("short.json"), Files.readString(file).replace("\"layers\" : 5", "\"layers\" : 6"));
        assertTrue(assertThrows(ModelFormatException.class, () -> ExitArtifact.load(dir.resolve("short.json")))
                .getMessage().contains("malformed"));
    }

    /** Share of distinct token trigrams among all trigrams: low when a generation loops. */
    static double distinctTrigrams(int[] t) {
        Set<List<Integer>> seen = new HashSet<>();
        for (int i = 0; i + 2 < t.length; i++) {
            seen.add(List.of(t[i], t[i + 1], t[i + 2]));
        }
        return t.length < 3 ? 1 : seen.size() / (double) (t.length - 2);
    }

    @Test
    void greedyGenerationsWithExitsOnTheDemoPromptsDoNotCollapseIntoRepetition() {
        List<String> prompts = List.of("Once upon a time", "Lily and Tom went to the park", "The little dog",
                "One day, a girl named Sue", "There was a big red ball");
        ExitClassifier exit = trained.artifact().classifier();
        double dense = 0;
        double exiting = 0;
        FlopAccount account = new FlopAccount();
        List<int[]> outputs = new ArrayList<>();
        try (BatchEngine plain = BatchEngine.builder(TestModels.model()).maxBatch(5).context(256)
                        .stopTokens(java.util.Set.of()).build();
                BatchEngine early = BatchEngine.builder(TestModels.model()).maxBatch(5).context(256).exit(exit)
                        .stopTokens(java.util.Set.of()).build()) {
            for (String p : prompts) {
                int[] prompt = TestModels.tokenizer().encode(p, true);
                int[] d = run(plain, prompt, null);
                int[] e = run(early, prompt, account);
                outputs.add(e);
                dense += distinctTrigrams(d) / prompts.size();
                exiting += distinctTrigrams(e) / prompts.size();
            }
        }
        assertTrue(account.savings().earlyExitTokens() > 0.05 * 5 * 96, "tokens exited early: "
                + account.savings().earlyExitTokens());
        assertTrue(exiting >= dense - 0.1, "distinct trigrams: exit " + exiting + " vs dense " + dense);
        for (int[] o : outputs) {
            assertTrue(distinctTrigrams(o) > 0.5, "no generation loops: " + distinctTrigrams(o));
        }
    }

    static int[] run(BatchEngine engine, int[] prompt, FlopAccount into) {
        Sequence s = new Sequence("x", prompt, SamplingParams.greedy(96));
        engine.submit(s);
        while (!s.isFinished()) {
            engine.step();
        }
        if (into != null) {
            into.addAll(s.account());
        }
        return s.generated();
    }
}
