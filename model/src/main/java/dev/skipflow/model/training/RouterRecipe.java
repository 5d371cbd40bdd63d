package dev.skipflow.model.training;

import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.eval.PerplexityEvaluator;
import dev.skipflow.model.eval.SkipOracle;
import dev.skipflow.model.eval.ServingEvaluator;
import dev.skipflow.model.routing.DecodeCalibration;
import dev.skipflow.model.routing.LearnedRouter;
import dev.skipflow.model.routing.MixedRankRouter;
import dev.skipflow.model.routing.RouterArtifact;
import dev.skipflow.model.routing.RouterTrainer;
import dev.skipflow.model.routing.ScheduleSearch;
import dev.skipflow.model.routing.SparsitySchedule;
import dev.skipflow.model.routing.StaticRouter;
import dev.skipflow.model.routing.TokenRouter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.IntConsumer;

/**
 * FTP's whole recipe for one target sparsity, as {@code train-router} and {@code report} run it:
 * <ol>
 *   <li>a genetic search of the per-block schedule with the static router;</li>
 *   <li>the skip oracle's damage on the training documents, when the guide is the oracle;</li>
 *   <li>training the router on the searched schedule ({@link RouterTrainer});</li>
 *   <li>refining the schedule with the trained router;</li>
 *   <li>calibrating the decode thresholds for the final schedule ({@link DecodeCalibration}).</li>
 * </ol>
 * Candidates are scored on held-out calibration documents (the last {@code searchDocs}), never on evaluation text.
 */
public final class RouterRecipe {

    /**
     * What a guide loss leads toward: the token-blocks whose skip alone flips the fewest top-1s (ORACLE, the
     * agreement the router is judged by), those that add the least NLL (ORACLE_NLL, perplexity), or FTP's static
     * router.
     */
    /**
     * What the guide loss leads toward: the skip oracle by agreement or by NLL, FTP's static router, or (with per-token
     * decisions) {@link MixedRankRouter} at the recent share that keeps the most agreement on held-out calibration text.
     */
    public enum Guide { ORACLE, ORACLE_NLL, STATIC, MIXED }

    /** The recent shares {@link Guide#MIXED} chooses among. */
    static final double[] MIXED_SHARES = {0, 0.25, 0.5, 0.75};

    /**
     * The recipe's settings; {@link #defaults(double)} are {@code train-router}'s defaults.
     *
     * @param schedule a fixed per-block schedule to train with (no search), or null
     * @param searchMaxLen tokens per scoring document: as long as the texts that will be served
     * @param oracleDocs with {@link Guide#ORACLE}, training documents measured token-block by token-block
     * @param decodeSparsity mean share of decoding tokens' token-blocks skipped, the final schedule's shape scaled to
     *     it; NaN = the schedule itself
     */
    public record Options(double sparsity, double[] schedule, int steps, int docsPerStep, int maxLen, int docs,
            int searchDocs, int searchMaxLen, int population, int generations, float learningRate, float sparsityWeight,
            double scheduleJitter, double guideFraction, Guide guide, int oracleDocs, float distillationWeight,
            long seed, boolean promptOnly, double decodeSparsity, boolean perToken) {

        public Options(double sparsity, double[] schedule, int steps, int docsPerStep, int maxLen, int docs,
                int searchDocs, int searchMaxLen, int population, int generations, float learningRate,
                float sparsityWeight, double scheduleJitter, double guideFraction, Guide guide, int oracleDocs,
                float distillationWeight, long seed, boolean promptOnly, double decodeSparsity) {
            this(sparsity, schedule, steps, docsPerStep, maxLen, docs, searchDocs, searchMaxLen, population, generations,
                    learningRate, sparsityWeight, scheduleJitter, guideFraction, guide, oracleDocs, distillationWeight,
                    seed, promptOnly, decodeSparsity, false);
        }

        public Options(double sparsity, double[] schedule, int steps, int docsPerStep, int maxLen, int docs,
                int searchDocs, int searchMaxLen, int population, int generations, float learningRate,
                float sparsityWeight, double scheduleJitter, double guideFraction, Guide guide, int oracleDocs,
                float distillationWeight, long seed) {
            this(sparsity, schedule, steps, docsPerStep, maxLen, docs, searchDocs, searchMaxLen, population, generations,
                    learningRate, sparsityWeight, scheduleJitter, guideFraction, guide, oracleDocs, distillationWeight,
                    seed, false, Double.NaN);
        }

        /** The same recipe training for prompt routing (FTP's setting; {@link RouterTrainer.Options#promptOnly}). */
        public Options withPromptOnly(boolean p) {
            return new Options(sparsity, schedule, steps, docsPerStep, maxLen, docs, searchDocs, searchMaxLen, population,
                    generations, learningRate, sparsityWeight, scheduleJitter, guideFraction, guide, oracleDocs,
                    distillationWeight, seed, p, decodeSparsity, perToken);
        }

        /** The same recipe with decoding tokens skipping {@code d} of their token-blocks on average (NaN = the schedule). */
        public Options withDecodeSparsity(double d) {
            return new Options(sparsity, schedule, steps, docsPerStep, maxLen, docs, searchDocs, searchMaxLen, population,
                    generations, learningRate, sparsityWeight, scheduleJitter, guideFraction, guide, oracleDocs,
                    distillationWeight, seed, promptOnly, d, perToken);
        }

        /**
         * The same recipe with per-token decisions ({@link RouterArtifact#perToken}): block 0 runs every prompt token
         * and ranks them for every later block.
         */
        public Options withPerToken(boolean t) {
            return new Options(sparsity, schedule, steps, docsPerStep, maxLen, docs, searchDocs, searchMaxLen, population,
                    generations, learningRate, sparsityWeight, scheduleJitter, guideFraction, guide, oracleDocs,
                    distillationWeight, seed, promptOnly, decodeSparsity, t);
        }

        public Options {
            if (!(sparsity > 0 && sparsity < 1)) {
                throw new IllegalArgumentException("sparsity must be in (0, 1), got " + sparsity);
            }
            if (steps < 1 || docsPerStep < 1 || docs < 1 || searchDocs < 1) {
                throw new IllegalArgumentException("steps, docs per step, docs and search docs must be at least 1");
            }
            if (!Double.isNaN(decodeSparsity) && !(decodeSparsity >= 0 && decodeSparsity < 1)) {
                throw new IllegalArgumentException("decode sparsity must be in [0, 1), got " + decodeSparsity);
            }
        }

        public static Options defaults(double sparsity) {
            return new Options(sparsity, null, 300, 4, 64, 256, 32, 256, 16, 10, 0.01f, 1f, 0.1, 1, Guide.ORACLE, 48,
                    0f, 7L);
        }

        /** A short recipe for smoke runs ({@code report --quick}): fewer steps, documents and generations. */
        public Options quick() {
            return new Options(sparsity, schedule, Math.min(steps, 60), docsPerStep, maxLen, Math.min(docs, 64),
                    Math.min(searchDocs, 8), searchMaxLen, Math.min(population, 8), Math.min(generations, 2), learningRate,
                    sparsityWeight, scheduleJitter, guideFraction, guide, Math.min(oracleDocs, 12), distillationWeight,
                    seed, promptOnly, decodeSparsity, perToken);
        }

        /** Calibration documents to read, each at most this long. */
        public int documentsNeeded() {
            return docs + searchDocs;
        }

        public int longestDocument() {
            return Math.max(maxLen, searchMaxLen);
        }
    }

    /** A named stage with a known amount of work, told how much is done; closed when the stage ends. */
    public interface Phase extends IntConsumer, AutoCloseable {
        @Override
        void close();

        /** What the stage is working on now (e.g. a progress bar's message); nothing by default. */
        default void status(String what) {}
    }

    /** Opens one {@link Phase} per stage, e.g. a progress bar. */
    public interface Phases {
        Phase open(String name, int total);
    }

    private RouterRecipe() {}

    /**
     * @param calibration documents read with {@link Options#longestDocument()} tokens, {@link Options#documentsNeeded()}
     *     of them (fewer is fine down to 2)
     * @param log one line per finding (searched schedule, training summary)
     */
    public static RouterArtifact run(LlamaModel model, String modelDescription, List<int[]> calibration, Options o,
            Phases phases, Consumer<String> log) {
        if (calibration.size() < 2) {
            throw new IllegalArgumentException("calibration text has fewer than 2 documents");
        }
        if (o.guide() == Guide.MIXED && !o.perToken()) {
            throw new IllegalArgumentException("the mixed-rank guide ranks each token once: it needs per-token "
                    + "decisions (--per-token)");
        }
        int held = Math.min(o.searchDocs(), calibration.size() / 2);
        List<int[]> scoring = heldOut(calibration, o.searchDocs(), o.searchMaxLen());
        List<int[]> training = calibration.subList(0, calibration.size() - held).stream()
                .map(d -> Arrays.copyOf(d, Math.min(d.length, o.maxLen()))).toList();
        int layers = model.spec().nLayers();
        PerplexityEvaluator evaluator = new PerplexityEvaluator(model);
        SparsitySchedule uniform = SparsitySchedule.uniform(o.sparsity(), layers);
        ScheduleSearch.Options search = new ScheduleSearch.Options(o.population(), o.generations(),
                Math.max(0.1, o.sparsity()), o.seed());

        SparsitySchedule searched = uniform;
        if (o.schedule() != null) {
            if (o.schedule().length != layers) {
                throw new IllegalArgumentException("the schedule has " + o.schedule().length + " values; the model has "
                        + layers + " blocks");
            }
            searched = new SparsitySchedule(o.schedule());
            uniform = SparsitySchedule.uniform(searched.mean(), layers);
        } else if (o.generations() > 0) {
            ScheduleSearch.Result r = search(phases, "search (static)", search, seeds(uniform), evaluator, scoring,
                    o.promptOnly(), StaticRouter::new);
            searched = r.best();
            log.accept(String.format(Locale.ROOT, "schedule searched with the static router: %s, calibration perplexity "
                    + "%.3f (uniform %.3f)", searched, r.cost(), r.startCost()));
        }
        double mixed = Double.NaN;
        if (o.guide() == Guide.MIXED) {
            mixed = mixedShare(model, searched, scoring, phases, log);
        }
        List<float[][]> damage = null;
        if (o.guide() == Guide.ORACLE || o.guide() == Guide.ORACLE_NLL) {
            training = training.subList(0, Math.min(o.oracleDocs(), training.size()));
            damage = new ArrayList<>();
            try (Phase phase = phases.open("skip oracle", training.size())) {
                for (int[] doc : training) {
                    damage.add(o.guide() == Guide.ORACLE ? SkipOracle.agreementCost(model, doc)
                            : SkipOracle.damage(model, doc));
                    phase.accept(damage.size());
                }
            }
        }
        RouterArtifact trained;
        try (Phase phase = phases.open("train-router", o.steps())) {
            trained = RouterTrainer.train(model, modelDescription, training, damage,
                    new RouterTrainer.Options(searched, o.steps(), o.learningRate(), o.sparsityWeight(),
                            o.distillationWeight(), o.docsPerStep(), o.scheduleJitter(), o.guideFraction(), o.seed(),
                            o.promptOnly(), o.perToken(), mixed),
                    phase);
        }
        log.accept("trained: " + trained.training());
        if (o.generations() == 0 || o.schedule() != null) {
            return calibrated(model, trained, scoring, o.decodeSparsity(), log);
        }
        List<SparsitySchedule> refineSeeds = new ArrayList<>(List.of(searched));
        refineSeeds.addAll(seeds(uniform));
        ScheduleSearch.Result r = search(phases, "refine (trained)", search, refineSeeds, evaluator, scoring,
                o.promptOnly(), s -> new LearnedRouter(trained, s));
        log.accept(String.format(Locale.ROOT, "schedule refined with the trained router: %s, calibration perplexity %.3f "
                + "(searched schedule %.3f)", r.best(), r.cost(), r.startCost()));
        return calibrated(model, trained.withSchedule(r.best(), String.format(Locale.ROOT,
                "schedule searched with the static router, then refined with the trained one (%d + %d generations of %d, "
                        + "on %d held-out calibration documents)", o.generations(), o.generations(), o.population(), held)),
                scoring, o.decodeSparsity(), log);
    }

    /**
     * Calibrates a trained artifact's decode cuts again, as {@link #run} ends: per position bucket, on the same held-out
     * documents, for artifacts written before the buckets (one cut per block) or for a new decode share. The router's
     * weights and prefill schedule are kept.
     *
     * @param calibration the documents {@link #run} would read ({@link Options#documentsNeeded()} of them, or fewer)
     * @param searchDocs held-out documents at the end of {@code calibration} ({@link Options#searchDocs()})
     * @param searchMaxLen tokens per held-out document ({@link Options#searchMaxLen()})
     * @param decodeSparsity mean share of decoding tokens' token-blocks to skip, or NaN to keep the artifact's decode
     *     schedule
     */
    public static RouterArtifact recalibrate(LlamaModel model, RouterArtifact artifact, List<int[]> calibration,
            int searchDocs, int searchMaxLen, double decodeSparsity, Consumer<String> log) {
        if (calibration.size() < 2 || searchDocs < 1) {
            throw new IllegalArgumentException("calibration needs at least 2 documents and 1 held out");
        }
        if (!Double.isNaN(decodeSparsity) && !(decodeSparsity >= 0 && decodeSparsity < 1)) {
            throw new IllegalArgumentException("decode sparsity must be in [0, 1), got " + decodeSparsity);
        }
        return calibrated(model, artifact, heldOut(calibration, searchDocs, searchMaxLen), decodeSparsity, log,
                "calibrated again");
    }

    /** The trainer's held-out scoring documents: the last {@code searchDocs} (at most half), cut to maxLen tokens. */
    private static List<int[]> heldOut(List<int[]> calibration, int searchDocs, int maxLen) {
        int held = Math.min(searchDocs, calibration.size() / 2);
        return calibration.subList(calibration.size() - held, calibration.size()).stream()
                .map(d -> Arrays.copyOf(d, Math.min(d.length, maxLen))).toList();
    }

    /**
     * Adds decode thresholds for the final schedule, or, when {@code decodeSparsity} is a number, a decode schedule
     * of that mean spread by inverse squared block influence and thresholds for it, both from the held-out documents.
     */
    private static RouterArtifact calibrated(LlamaModel model, RouterArtifact a, List<int[]> scoring,
            double decodeSparsity, Consumer<String> log) {
        return calibrated(model, a, scoring, decodeSparsity, log, "calibrated");
    }

    private static RouterArtifact calibrated(LlamaModel model, RouterArtifact a, List<int[]> scoring,
            double decodeSparsity, Consumer<String> log, String how) {
        if (!Double.isNaN(decodeSparsity)) {
            a = DecodeCalibration.withDecodeShare(model, a, scoring, decodeSparsity);
            log.accept("decode schedule: " + a.decodeShares());
        }
        double[] t = DecodeCalibration.thresholds(model, a, scoring);
        log.accept("decode thresholds per block: " + Arrays.toString(t));
        return a.withDecodeThresholds(t, "decode thresholds " + how + " on " + scoring.size() + " held-out documents"
                + " (one cut per block and position bucket)");
    }

    /**
     * The {@link MixedRankRouter} recent share that keeps the most top-1 agreement on the held-out documents under the
     * serving protocol with prompt routing, as the router will be judged.
     */
    private static double mixedShare(LlamaModel model, SparsitySchedule schedule, List<int[]> scoring, Phases phases,
            Consumer<String> log) {
        List<PerplexityEvaluator.Variant> variants = new ArrayList<>();
        for (double r : MIXED_SHARES) {
            variants.add(new PerplexityEvaluator.Variant("recent " + r, new MixedRankRouter(schedule, r), null));
        }
        ServingEvaluator.Side side;
        try (Phase phase = phases.open("guide (mixed rank)", scoring.size())) {
            side = new ServingEvaluator(model, false).compare(scoring, variants, phase);
        }
        double best = MIXED_SHARES[0];
        double bestAgreement = -1;
        StringBuilder seen = new StringBuilder();
        for (int i = 0; i < MIXED_SHARES.length; i++) {
            double a = side.variants().get(i).agreement();
            seen.append(String.format(Locale.ROOT, "%s%.2f: %.2f%%", i == 0 ? "" : ", ", MIXED_SHARES[i], 100 * a));
            if (a > bestAgreement) {
                bestAgreement = a;
                best = MIXED_SHARES[i];
            }
        }
        log.accept(String.format(Locale.ROOT, "mixed-rank guide: recent share %.2f (held-out agreement by share: %s)",
                best, seen));
        return best;
    }

    /** The uniform schedule first, then one concentrated on each block, so the search starts spread out. */
    private static List<SparsitySchedule> seeds(SparsitySchedule uniform) {
        List<SparsitySchedule> seeds = new ArrayList<>(List.of(uniform));
        seeds.addAll(ScheduleSearch.corners(uniform.mean(), uniform.perLayer().length));
        return seeds;
    }

    /**
     * Candidates scored by perplexity on the held-out documents: every position routed, or, for a prompt-only
     * router, as served (prompt routed, continuation dense and scored), so the schedule fits where it will act.
     */
    private static ScheduleSearch.Result search(Phases phases, String name, ScheduleSearch.Options o,
            List<SparsitySchedule> seeds, PerplexityEvaluator evaluator, List<int[]> scoring, boolean promptOnly,
            Function<SparsitySchedule, TokenRouter> router) {
        try (Phase phase = phases.open(name, o.evaluations())) {
            return ScheduleSearch.search(seeds, s -> (promptOnly ? evaluator.evaluatePromptRouted(scoring, router.apply(s))
                    : evaluator.evaluate(scoring, router.apply(s))).perplexity(), o, phase);
        }
    }
}
