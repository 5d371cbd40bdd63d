package dev.skipflow.job.cli;

import ai.djl.engine.Engine;
import dev.skipflow.job.report.ReportPoint;
import dev.skipflow.job.report.ReportWriter;
import dev.skipflow.job.report.SpeedPoint;
import dev.skipflow.model.ModelPaths;
import dev.skipflow.model.SyntheticModels;
import dev.skipflow.model.bench.ThroughputBench;
import dev.skipflow.model.decoder.LlamaModel;
import dev.skipflow.model.eval.Documents;
import dev.skipflow.model.eval.PerplexityEvaluator;
import dev.skipflow.model.flops.Savings;
import dev.skipflow.model.routing.RouterSpec;
import dev.skipflow.model.routing.SparsitySchedule;
import dev.skipflow.model.routing.StaticRouter;
import dev.skipflow.model.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "report", mixinStandardHelpOptions = true,
        description = {"Measures quality against compute in one sitting: the dense path and each routing baseline over a "
                + "sparsity sweep, on the valid sample and WikiText-2 (or --text files), plus prefill wall-clock on a "
                + "model shape where compute dominates.",
            "Writes results.json, RESULTS.md and PNG plots into --out."})
public final class ReportCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Folder for results.json, RESULTS.md and plots.")
    Path out;

    @Option(names = "--text", paramLabel = "FILE", description = "Texts to evaluate (default: the valid sample and WikiText-2).")
    List<Path> texts;

    @Option(names = "--max-docs", defaultValue = "200", description = "Documents per text (default: ${DEFAULT-VALUE}).")
    int maxDocs;

    @Option(names = "--max-len", defaultValue = "256", description = "Tokens per document (default: ${DEFAULT-VALUE}).")
    int maxLen;

    @Option(names = "--sparsities", split = ",", defaultValue = "0.1,0.2,0.3,0.4", description = "Target sparsities (default: ${DEFAULT-VALUE}).")
    double[] sparsities;

    @Option(names = "--methods", split = ",", defaultValue = "static,random,importance,shortgpt",
            description = "Routing methods (default: ${DEFAULT-VALUE}).")
    List<String> methods;

    @Option(names = "--speed-model", defaultValue = "stories110M",
            description = "Synthetic shape for prefill wall-clock; 'none' to skip (default: ${DEFAULT-VALUE}).")
    String speedModel;

    @Option(names = "--quick", description = "A short run: sparsities 0.2 and 0.4, 20 documents per text, 3 speed rounds.")
    boolean quick;

    @Override
    public Integer call() throws Exception {
        List<Path> files = texts != null ? texts : List.of(ModelPaths.sharedData("tinystories-valid-sample.txt"),
                ModelPaths.sharedData("wikitext2-test.txt"));
        int docs = quick ? Math.min(maxDocs, 20) : maxDocs;
        double[] sweep = quick ? new double[] {0.2, 0.4} : sparsities;
        List<ReportPoint> points = new ArrayList<>();
        List<SpeedPoint> speed = new ArrayList<>();
        Map<String, Object> machine = new LinkedHashMap<>();
        machine.put("cores", Runtime.getRuntime().availableProcessors());
        machine.put("jvm", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        machine.put("engine", Engine.getInstance().getEngineName() + " " + Engine.getInstance().getVersion());
        Tokenizer tokenizer = modelOptions.tokenizer();
        boolean measureSpeed = !"none".equalsIgnoreCase(speedModel);
        int total = files.size() * (1 + methods.size() * sweep.length) + (measureSpeed ? sweep.length : 0);
        try (LlamaModel model = new LlamaModel(modelOptions.weights(), modelOptions.device());
                ProgressBar bar = new ProgressBarBuilder().setTaskName("report").setInitialMax(total)
                        .setStyle(ProgressBarStyle.ASCII).setConsumer(Progress.stderrConsumer()).build()) {
            machine.put("device", model.device().toString());
            machine.put("model", modelOptions.describeModel());
            PerplexityEvaluator eval = new PerplexityEvaluator(model);
            for (Path file : files) {
                List<int[]> d = Documents.read(file, tokenizer, maxLen, docs);
                String name = file.getFileName() + " (" + d.size() + " docs, max " + maxLen + " tokens)";
                var dense = eval.compare(d, null, i -> { }).dense();
                points.add(new ReportPoint(name, "dense", "dense", 0, dense.perplexity(), dense.perplexity(), 1, 0, 0,
                        dense.seconds(), dense.seconds(), 1, tokens(dense) / dense.seconds()));
                bar.step();
                for (String method : methods) {
                    for (double s : sweep) {
                        bar.setExtraMessage(method + " " + s);
                        var router = new RouterSpec(method, s, null).build(model, tokenizer);
                        var c = eval.compare(d, router, i -> { });
                        Savings sv = c.routed().flops().savings();
                        points.add(new ReportPoint(name, method, router.describe(), s, c.routed().perplexity(),
                                c.dense().perplexity(), c.agreement(), sv.savedFraction(),
                                sv.tokenBlocksSkipped() / (double) sv.tokenBlocksTotal(), c.routed().seconds(),
                                c.dense().seconds(), c.dense().seconds() / c.routed().seconds(),
                                tokens(c.routed()) / c.routed().seconds()));
                        bar.step();
                    }
                }
            }
            if (measureSpeed) {
                try (LlamaModel big = new LlamaModel(SyntheticModels.weights(speedModel, 7L), modelOptions.device())) {
                    for (double s : sweep) {
                        bar.setExtraMessage(speedModel + " prefill, static " + s);
                        var bench = new ThroughputBench(big, new ThroughputBench.Options(new int[] {1}, 1, 8, 256,
                                quick ? 3 : 5, 1234L, quick ? 2 : 5));
                        var r = bench.prefillSideBySide(new StaticRouter(SparsitySchedule.uniform(s, big.config().nLayers())),
                                msg -> { });
                        speed.add(new SpeedPoint(speedModel, r.router(), r.routed().tokens(), r.savedFraction(),
                                r.dense().tokensPerSecond(), r.routed().tokensPerSecond(), r.speedup()));
                        bar.step();
                    }
                }
            }
        }
        String command = "./skipflow " + String.join(" ", spec.commandLine().getParseResult().originalArgs());
        List<Path> written = ReportWriter.write(out, machine, command, points, speed);
        System.err.println("report: wrote " + written.size() + " files to " + out.toAbsolutePath());
        written.forEach(p -> System.out.println(p));
        return 0;
    }

    private static long tokens(PerplexityEvaluator.Result r) {
        return r.predictedTokens() + r.documents();
    }
}
