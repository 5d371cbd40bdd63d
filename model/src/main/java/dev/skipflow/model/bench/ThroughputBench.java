package dev.skipflow.model.bench;

import dev.skipflow.model.engine.BatchEngine;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.engine.Sequence;
import dev.skipflow.model.sampling.SamplingParams;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Measures the engine as a user runs it: decode throughput with B sequences in the batch (every sequence
 * generates {@code steps} greedy tokens, stops disabled so the batch stays full) and prefill throughput of
 * one prompt. Each figure is the median of several rounds, after a timed warm-up and one unmeasured round
 * per batch size.
 */
public final class ThroughputBench {

    /** Benchmarks run every sequence to its length, so the batch stays full. */
    private static final java.util.Set<Integer> NEVER = java.util.Set.of();

    /** What to measure. */
    public record Options(int[] batchSizes, int decodeSteps, int promptTokens, int prefillTokens, int rounds,
            long seed, double warmupSeconds) {}

    /** Decode at one batch size: aggregate tokens/s and time per step, medians over rounds. */
    public record DecodePoint(int batch, double tokensPerSecond, double msPerStep, double[] roundTokensPerSecond) {}

    /** Prefill of one prompt. */
    public record PrefillPoint(int tokens, double tokensPerSecond, double msPerPrompt) {}

    /** Prefill dense and routed, rounds alternating; speed-up = median over rounds of dense time / routed time. */
    public record RoutedPrefill(String router, PrefillPoint dense, PrefillPoint routed, double speedup,
            double savedFraction) {}

    public record Report(List<DecodePoint> decode, PrefillPoint prefill, RoutedPrefill routedPrefill) {}

    /**
     * Greedy decode of text prompts at one batch size, dense and adaptive (exit and/or router) engines in
     * alternating rounds; speed-up = dense time / adaptive time (medians). Savings are the adaptive engine's.
     */
    public record AdaptiveDecode(String adaptive, int batch, double denseTokensPerSecond, double adaptiveTokensPerSecond,
            double speedup, double savedFraction, double meanExitLayer, double earlyExitShare, double skippedShare,
            Double matmulBound) {}

    /**
     * What the matrix products alone allow a routed decode step: every block's linears timed at the full batch's
     * rows and at the rows a routed block keeps (the decode's measured share of token-blocks skipped, the same in
     * every block), the LM head at the full batch in both; bound = full time / routed time. On a CPU a product's
     * time has a part that does not shrink with rows (its weights are read whatever the row count), so this is
     * below the FLOPs' ideal; a routed decode that reaches it has no routing overhead left.
     */
    public record MatmulBound(int rows, int keptRows, double denseMs, double routedMs) {
        public double speedup() {
            return denseMs / routedMs;
        }
    }

    /**
     * One point measured on two models in alternating rounds: tokens/s of each (medians) and the median of the
     * paired ratios this model / the original.
     */
    public record PairedPoint(int size, double originalTokensPerSecond, double tokensPerSecond, double speedup) {}

    /** This model against an original: decode at each batch size and prefill, rounds alternating. */
    public record Comparison(List<PairedPoint> decode, PairedPoint prefill) {}

    private final LlamaModel model;
    private final Options options;

    public ThroughputBench(LlamaModel model, Options options) {
        this.model = model;
        this.options = options;
    }

    public Report run(Consumer<String> progress) {
        int context = Math.min(model.spec().seqLen(),
                Math.max(options.promptTokens() + options.decodeSteps(), options.prefillTokens()));
        int maxBatch = Arrays.stream(options.batchSizes()).max().orElse(1);
        List<DecodePoint> decode = new ArrayList<>();
        try (BatchEngine engine = BatchEngine.builder(model).maxBatch(maxBatch).context(context).stopTokens(NEVER).build()) {
            // Warm-up: DJL's Java paths take seconds of JIT before steady state; measure only after that.
            progress.accept("warm-up " + options.warmupSeconds() + " s");
            long warmupEnd = System.nanoTime() + (long) (options.warmupSeconds() * 1e9);
            while (System.nanoTime() < warmupEnd) {
                decodeRound(engine, maxBatch, Math.min(32, options.decodeSteps()));
                decodeRound(engine, 1, Math.min(32, options.decodeSteps()));
                prefillOnce(engine, Math.min(options.prefillTokens(), context));
            }
            for (int b : options.batchSizes()) {
                progress.accept("decode batch " + b);
                decodeRound(engine, b, options.decodeSteps());
                double[] rounds = new double[options.rounds()];
                double[] stepMs = new double[options.rounds()];
                for (int r = 0; r < options.rounds(); r++) {
                    double[] m = decodeRound(engine, b, options.decodeSteps());
                    rounds[r] = m[0];
                    stepMs[r] = m[1];
                }
                decode.add(new DecodePoint(b, median(rounds), median(stepMs), rounds));
            }
            progress.accept("prefill " + options.prefillTokens() + " tokens");
            int n = Math.min(options.prefillTokens(), context);
            prefillOnce(engine, n);
            double[] times = new double[options.rounds()];
            for (int r = 0; r < options.rounds(); r++) {
                times[r] = prefillOnce(engine, n);
            }
            double sec = median(times);
            return new Report(decode, new PrefillPoint(n, n / sec, sec * 1e3), null);
        }
    }

    /**
     * This model (say, a compressed one) and {@code original} side by side: for each batch size and for prefill, a
     * warm-up of both, one unmeasured round each, then {@code rounds} rounds alternating between them (the order
     * flipping every round, so drift and warm-up favour neither); speed-up = median of the paired ratios.
     */
    public Comparison againstOriginal(LlamaModel original, Consumer<String> progress) {
        if (original.spec().vocabSize() != model.spec().vocabSize()) {
            throw new IllegalArgumentException("the original's vocabulary differs from this model's");
        }
        int context = Math.min(Math.min(model.spec().seqLen(), original.spec().seqLen()),
                Math.max(options.promptTokens() + options.decodeSteps(), options.prefillTokens()));
        int maxBatch = Arrays.stream(options.batchSizes()).max().orElse(1);
        List<PairedPoint> decode = new ArrayList<>();
        try (BatchEngine mine = BatchEngine.builder(model).maxBatch(maxBatch).context(context).stopTokens(NEVER).build();
                BatchEngine theirs = BatchEngine.builder(original).maxBatch(maxBatch).context(context).stopTokens(NEVER)
                        .build()) {
            BatchEngine[] engines = {theirs, mine};
            progress.accept("warm-up " + options.warmupSeconds() + " s, both models");
            int n = Math.min(options.prefillTokens(), context);
            long warmupEnd = System.nanoTime() + (long) (options.warmupSeconds() * 1e9);
            do {
                for (BatchEngine e : engines) {
                    decodeRound(e, maxBatch, Math.min(32, options.decodeSteps()));
                    decodeRound(e, 1, Math.min(32, options.decodeSteps()));
                    prefillOnce(e, n);
                }
            } while (System.nanoTime() < warmupEnd);
            for (int b : options.batchSizes()) {
                progress.accept("decode batch " + b + ", original and this model alternating");
                double[][] tps = new double[2][options.rounds()];
                for (BatchEngine e : engines) {
                    decodeRound(e, b, options.decodeSteps());
                }
                for (int r = 0; r < options.rounds(); r++) {
                    for (int k = 0; k < 2; k++) {
                        int side = r % 2 == 0 ? k : 1 - k;
                        tps[side][r] = decodeRound(engines[side], b, options.decodeSteps())[0];
                    }
                }
                decode.add(paired(b, tps[0], tps[1]));
            }
            progress.accept("prefill " + n + " tokens, original and this model alternating");
            double[][] tps = new double[2][options.rounds()];
            for (BatchEngine e : engines) {
                prefillOnce(e, n);
            }
            for (int r = 0; r < options.rounds(); r++) {
                for (int k = 0; k < 2; k++) {
                    int side = r % 2 == 0 ? k : 1 - k;
                    tps[side][r] = n / prefillOnce(engines[side], n);
                }
            }
            return new Comparison(decode, paired(n, tps[0], tps[1]));
        }
    }

    private static PairedPoint paired(int size, double[] original, double[] mine) {
        double[] ratio = new double[original.length];
        for (int i = 0; i < ratio.length; i++) {
            ratio[i] = mine[i] / original[i];
        }
        return new PairedPoint(size, median(original), median(mine), median(ratio));
    }

    /** Prefill of one {@code prefillTokens} prompt, dense and routed in alternating rounds after a warm-up. */
    public RoutedPrefill prefillSideBySide(dev.skipflow.model.routing.TokenRouter router, Consumer<String> progress) {
        int n = Math.min(options.prefillTokens(), model.spec().seqLen());
        try (BatchEngine dense = BatchEngine.builder(model).maxBatch(1).context(n).stopTokens(NEVER).build(); BatchEngine routed = BatchEngine.builder(model).maxBatch(1).context(n).router(router).stopTokens(NEVER).build()) {
            progress.accept("prefill " + n + " tokens, dense vs " + router.describe());
            long warmupEnd = System.nanoTime() + (long) (options.warmupSeconds() * 1e9);
            do {
                prefillOnce(dense, n);
                prefillOnce(routed, n);
            } while (System.nanoTime() < warmupEnd);
            double[] d = new double[options.rounds()];
            double[] r = new double[options.rounds()];
            for (int i = 0; i < options.rounds(); i++) {
                d[i] = prefillOnce(dense, n);
                r[i] = prefillOnce(routed, n);
            }
            Sequence probe = new Sequence("probe", prompt(new SplittableRandom(options.seed()), n), SamplingParams.greedy(1));
            routed.submit(probe);
            routed.step();
            double saved = probe.account().savings().savedFraction();
            double ds = median(d);
            double rs = median(r);
            double[] ratio = new double[d.length];
            for (int i = 0; i < d.length; i++) {
                ratio[i] = d[i] / r[i]; // paired: each round's dense and routed ran back to back
            }
            return new RoutedPrefill(router.describe(), new PrefillPoint(n, n / ds, ds * 1e3),
                    new PrefillPoint(n, n / rs, rs * 1e3), median(ratio), saved);
        }
    }

    /** Decode side by side: {@code prompts} cycle to fill the batch; every sequence decodes {@code decodeSteps}. */
    public AdaptiveDecode decodeSideBySide(dev.skipflow.model.routing.TokenRouter router,
            dev.skipflow.model.exit.ExitClassifier exit, List<int[]> prompts, int batch, boolean routeDecode,
            Consumer<String> progress) {
        int longest = prompts.stream().mapToInt(p -> p.length).max().orElse(1);
        int context = Math.min(model.spec().seqLen(), longest + options.decodeSteps());
        String name = (router == null ? "" : router.describe() + (exit == null ? "" : " + ")) + (exit == null ? "" : "exit " + exit.describe());
        try (BatchEngine dense = BatchEngine.builder(model).maxBatch(batch).context(context).stopTokens(NEVER).build();
                BatchEngine adaptive = BatchEngine.builder(model).maxBatch(batch).context(context).router(router).exit(exit)
                        .routeDecode(routeDecode).stopTokens(NEVER).build()) {
            progress.accept("decode batch " + batch + ", dense vs " + name);
            long warmupEnd = System.nanoTime() + (long) (options.warmupSeconds() * 1e9);
            do {
                textRound(dense, prompts, batch, null, null);
                textRound(adaptive, prompts, batch, null, null);
            } while (System.nanoTime() < warmupEnd);
            double[] d = new double[options.rounds()];
            double[] a = new double[options.rounds()];
            double[] ratio = new double[options.rounds()];
            dev.skipflow.model.flops.FlopAccount account = new dev.skipflow.model.flops.FlopAccount();
            long[] decodeFlops = new long[4];
            for (int i = 0; i < options.rounds(); i++) {
                d[i] = textRound(dense, prompts, batch, null, null);
                a[i] = textRound(adaptive, prompts, batch, i == 0 ? account : null, i == 0 ? decodeFlops : null);
                ratio[i] = a[i] / d[i]; // paired: each round's dense and adaptive ran back to back
            }
            var s = account.savings();
            double tokens = (double) batch * options.decodeSteps();
            double saved = decodeFlops[0] == 0 ? 0 : 1 - (double) decodeFlops[1] / decodeFlops[0];
            double skipped = decodeFlops[3] == 0 ? 0 : (double) decodeFlops[2] / decodeFlops[3];
            Double bound = routeDecode && router != null && exit == null && skipped > 0
                    ? Double.valueOf(matmulBound(batch, skipped).speedup()) : null;
            return new AdaptiveDecode(name, batch, median(d), median(a), median(ratio), saved, s.meanExitLayer(),
                    s.earlyExitTokens() / tokens, skipped, bound);
        }
    }

    /**
     * Decode tokens/s of {@code batch} sequences: all are admitted and prefilled by the first step, which is not
     * timed (the prompts' prefills are not decode); the steps after it are. Their whole accounts are added to
     * {@code into}; the timed steps' dense and executed FLOPs, token-blocks skipped and token-blocks alone to
     * {@code decodeFlops}.
     */
    private double textRound(BatchEngine engine, List<int[]> prompts, int batch, dev.skipflow.model.flops.FlopAccount into,
            long[] decodeFlops) {
        List<Sequence> seqs = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            Sequence s = new Sequence(i, prompts.get(i % prompts.size()), SamplingParams.greedy(options.decodeSteps()));
            seqs.add(s);
            engine.submit(s);
        }
        engine.step();
        long[] before = decodeFlops == null ? null : totals(seqs);
        double tokensPerSecond = decodeUntilIdle(engine)[0];
        if (into != null) {
            seqs.forEach(s -> into.addAll(s.account()));
        }
        if (decodeFlops != null) {
            long[] after = totals(seqs);
            for (int i = 0; i < decodeFlops.length; i++) {
                decodeFlops[i] += after[i] - before[i];
            }
        }
        return tokensPerSecond;
    }

    /** {dense FLOPs, executed FLOPs, token-blocks skipped, token-blocks} over the sequences' accounts. */
    private static long[] totals(List<Sequence> seqs) {
        long[] t = new long[4];
        for (Sequence s : seqs) {
            var v = s.account().savings();
            t[0] += v.denseFlops();
            t[1] += v.executedFlops();
            t[2] += v.tokenBlocksSkipped();
            t[3] += v.tokenBlocksTotal();
        }
        return t;
    }

    /**
     * Times every block's linears at {@code rows} and at the rows left when {@code skippedShare} of them skip,
     * in alternating repetitions (medians per product), and the LM head at {@code rows}; see {@link MatmulBound}.
     */
    public MatmulBound matmulBound(int rows, double skippedShare) {
        int kept = Math.max(1, (int) Math.round(rows * (1 - skippedShare)));
        List<dev.skipflow.model.nn.Linear> linears = new ArrayList<>();
        for (int l = 0; l < model.spec().nLayers(); l++) {
            var block = model.block(l);
            linears.add(block.qkv());
            linears.add(block.wo());
            if (block.mlp() instanceof dev.skipflow.model.nn.GatedMlp g) {
                linears.add(g.gateUp());
                linears.add(g.down());
            }
        }
        int reps = Math.max(5, options.rounds());
        double[][] full = new double[linears.size()][reps];
        double[][] part = new double[linears.size()][reps];
        double[] head = new double[reps];
        try (ai.djl.ndarray.NDManager m = model.newStepManager()) {
            int dim = model.spec().dim();
            for (int r = -1; r < reps; r++) { // r = -1 warms up
                for (int i = 0; i < linears.size(); i++) {
                    var lin = linears.get(i);
                    double a = timeOnce(m, lin, rows);
                    double b = timeOnce(m, lin, kept);
                    if (r >= 0) {
                        full[i][r] = a;
                        part[i][r] = b;
                    }
                }
                try (ai.djl.ndarray.NDManager step = m.newSubManager()) {
                    ai.djl.ndarray.NDArray x = step.randomNormal(new ai.djl.ndarray.types.Shape(rows, dim));
                    x.get(0).getFloat(0);
                    long t0 = System.nanoTime();
                    model.logits(x).get(0).getFloat(0); // reading one value waits for the device
                    if (r >= 0) {
                        head[r] = (System.nanoTime() - t0) / 1e6;
                    }
                }
            }
        }
        double dense = median(head);
        double routed = dense;
        for (int i = 0; i < linears.size(); i++) {
            dense += median(full[i]);
            routed += median(part[i]);
        }
        return new MatmulBound(rows, kept, dense, routed);
    }

    private static double timeOnce(ai.djl.ndarray.NDManager parent, dev.skipflow.model.nn.Linear lin, int rows) {
        try (ai.djl.ndarray.NDManager m = parent.newSubManager()) {
            ai.djl.ndarray.NDArray x = m.randomNormal(new ai.djl.ndarray.types.Shape(rows, lin.in()));
            x.get(0).getFloat(0);
            long t0 = System.nanoTime();
            ai.djl.ndarray.NDArray y = lin.forward(x);
            y.get(0).getFloat(0);
            return (System.nanoTime() - t0) / 1e6;
        }
    }

    /** Returns {tokens/s over the decode steps, ms per decode step}. */
    private double[] decodeRound(BatchEngine engine, int batch, int steps) {
        SplittableRandom rnd = new SplittableRandom(options.seed());
        for (int i = 0; i < batch; i++) {
            engine.submit(new Sequence(i, prompt(rnd, options.promptTokens()), SamplingParams.greedy(steps)));
        }
        engine.step(); // admits (prefills) all, then the first decode step
        return decodeUntilIdle(engine);
    }

    /** Times the engine's steps until it is idle: {tokens/s over them, ms per step}. */
    private static double[] decodeUntilIdle(BatchEngine engine) {
        long start = System.nanoTime();
        long stepsRun = 0;
        long tokens = 0;
        while (!engine.isIdle()) {
            tokens += engine.running();
            engine.step();
            stepsRun++;
        }
        double sec = (System.nanoTime() - start) / 1e9;
        return new double[] {tokens / sec, stepsRun == 0 ? 0 : sec * 1e3 / stepsRun};
    }

    private double prefillOnce(BatchEngine engine, int tokens) {
        engine.submit(new Sequence("prefill", prompt(new SplittableRandom(options.seed()), tokens),
                SamplingParams.greedy(1)));
        long start = System.nanoTime();
        engine.step();
        return (System.nanoTime() - start) / 1e9;
    }

    private int[] prompt(SplittableRandom rnd, int n) {
        int[] p = new int[n];
        p[0] = 1;
        for (int i = 1; i < n; i++) {
            p[i] = 3 + rnd.nextInt(model.spec().vocabSize() - 3);
        }
        return p;
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
