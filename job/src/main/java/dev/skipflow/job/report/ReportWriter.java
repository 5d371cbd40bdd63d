package dev.skipflow.job.report;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.model.report.ReportPoint;
import dev.skipflow.model.report.ReportRunner;
import dev.skipflow.model.report.SpeedPoint;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.ToDoubleFunction;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** Writes results.json, RESULTS.md and the plots of a report. */
public final class ReportWriter {

    private ReportWriter() {}

    /** @param command the command line that made the report, quoted in it */
    public static List<Path> write(Path out, String command, ReportRunner.Result result) throws IOException {
        Map<String, Object> machine = result.machine();
        Map<String, String> artifacts = result.artifacts();
        List<ReportPoint> points = result.points();
        List<SpeedPoint> speed = result.speed();
        Files.createDirectories(out);
        List<Path> files = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.put("command", command);
        root.put("protocol", result.protocol());
        root.set("machine", json.valueToTree(machine));
        root.set("artifacts", json.valueToTree(artifacts));
        root.set("points", json.valueToTree(points));
        root.set("speed", json.valueToTree(speed));
        Path results = out.resolve("results.json");
        json.writerWithDefaultPrettyPrinter().writeValue(results.toFile(), root);
        files.add(results);
        files.add(markdown(out, machine, command, artifacts, points, speed, result.serving()));
        for (String text : texts(points)) {
            String slug = slug(text);
            files.add(plot(out.resolve("perplexity-" + slug + ".png"), "Perplexity vs FLOPs saved, Pareto front per method: "
                    + slug, "Perplexity (log scale, lower is better)", points, text, ReportPoint::perplexity, true, Shape.FRONT_LOW));
            files.add(plot(out.resolve("agreement-" + slug + ".png"), "Top-1 agreement vs FLOPs saved, Pareto front per method: "
                    + slug, "Top-1 agreement with dense (%)", points, text, p -> 100 * p.agreement(), false,
                    Shape.FRONT_HIGH));
            files.add(plot(out.resolve("speedup-" + slug + ".png"), "Measured speed-up vs FLOPs saved: " + slug,
                    "Wall-clock speed-up over dense (x)", points, text, ReportPoint::speedup, false, Shape.SCATTER));
        }
        if (!speed.isEmpty()) {
            files.add(speedPlot(out.resolve("prefill-speedup-" + speed.get(0).model() + ".png"), speed));
        }
        return files;
    }

    /** File-name part for a text's plots or a model's folder: its file name without the extension, e.g. "wikitext2-test". */
    public static String slug(String text) {
        String name = text.split(" \\(")[0].replaceAll("\\.[A-Za-z0-9]+$", "");
        return name.replaceAll("[^A-Za-z0-9]+", "-").replaceAll("^-|-$", "");
    }

    private static Set<String> texts(List<ReportPoint> points) {
        Set<String> t = new LinkedHashSet<>();
        points.forEach(p -> t.add(p.text()));
        return t;
    }

    interface Metric {
        double of(ReportPoint p);
    }

    /** One clearly different colour per method, in the report's method order, then the ideal line. */
    private static final java.awt.Color[] PALETTE = {
        java.awt.Color.BLACK, new java.awt.Color(230, 159, 0), new java.awt.Color(128, 128, 128),
        new java.awt.Color(0, 158, 115), new java.awt.Color(213, 94, 0), new java.awt.Color(0, 114, 178),
        new java.awt.Color(204, 121, 167), new java.awt.Color(86, 180, 233), new java.awt.Color(120, 60, 160)};

    /** How a method's points are drawn: its Pareto front (lower or higher is better) as a line, or every point. */
    enum Shape { FRONT_LOW, FRONT_HIGH, SCATTER }

    /**
     * The points no other point of the same set beats: at least as much saved and at least as good a metric,
     * better in one. Sorted by saved compute.
     */
    static <T> List<T> front(List<T> ps, ToDoubleFunction<T> saved, ToDoubleFunction<T> metric, boolean lowerIsBetter) {
        List<T> out = new ArrayList<>();
        for (T p : ps) {
            boolean dominated = false;
            for (T q : ps) {
                double mp = metric.applyAsDouble(p);
                double mq = metric.applyAsDouble(q);
                double sp = saved.applyAsDouble(p);
                double sq = saved.applyAsDouble(q);
                boolean asGood = lowerIsBetter ? mq <= mp : mq >= mp;
                boolean better = sq > sp || (lowerIsBetter ? mq < mp : mq > mp);
                if (q != p && sq >= sp && asGood && better) {
                    dominated = true;
                    break;
                }
            }
            if (!dominated) {
                out.add(p);
            }
        }
        out.sort((a, b) -> Double.compare(saved.applyAsDouble(a), saved.applyAsDouble(b)));
        return out;
    }

    private static Path plot(Path file, String title, String yTitle, List<ReportPoint> points, String text, Metric metric,
            boolean logY, Shape shape) throws IOException {
        XYChart chart = new XYChartBuilder().width(1000).height(600).title(title)
                .xAxisTitle("FLOPs saved against dense (%)").yAxisTitle(yTitle).build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        chart.getStyler().setSeriesColors(PALETTE);
        chart.getStyler().setYAxisLogarithmic(logY);
        chart.getStyler().setMarkerSize(8);
        Map<String, List<ReportPoint>> byMethod = new LinkedHashMap<>();
        for (ReportPoint p : points) {
            if (p.text().equals(text)) {
                byMethod.computeIfAbsent(p.method(), k -> new ArrayList<>()).add(p);
            }
        }
        double minSaved = 0;
        double maxSaved = 0.4;
        for (var e : byMethod.entrySet()) {
            List<ReportPoint> ps = new ArrayList<>(e.getValue());
            ps.sort((a, b) -> Double.compare(a.savedFraction(), b.savedFraction()));
            if (shape != Shape.SCATTER) {
                ps = front(ps, ReportPoint::savedFraction, metric::of, shape == Shape.FRONT_LOW);
            }
            for (ReportPoint p : ps) {
                minSaved = Math.min(minSaved, p.savedFraction());
                maxSaved = Math.max(maxSaved, p.savedFraction());
            }
            double[] x = ps.stream().mapToDouble(p -> 100 * p.savedFraction()).toArray();
            double[] y = ps.stream().mapToDouble(metric::of).toArray();
            XYSeries s = chart.addSeries(e.getKey(), x, y);
            s.setMarker(SeriesMarkers.CIRCLE);
            if (shape == Shape.SCATTER) {
                s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
            }
        }
        if (shape == Shape.SCATTER) {
            addIdealSpeedup(chart, minSaved, maxSaved);
        }
        BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
        return file;
    }

    private static Path speedPlot(Path file, List<SpeedPoint> speed) throws IOException {
        XYChart chart = new XYChartBuilder().width(900).height(560)
                .title("Prefill speed-up vs compute saved (" + speed.get(0).model() + ", " + speed.get(0).promptTokens()
                        + "-token prompt)")
                .xAxisTitle("FLOPs saved against dense (%)").yAxisTitle("Wall-clock speed-up over dense (x)").build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        chart.getStyler().setMarkerSize(8);
        double[] x = speed.stream().mapToDouble(s -> 100 * s.savedFraction()).toArray();
        double[] y = speed.stream().mapToDouble(SpeedPoint::speedup).toArray();
        chart.addSeries("measured (static router)", x, y).setMarker(SeriesMarkers.CIRCLE);
        addIdealSpeedup(chart, 0, speed.stream().mapToDouble(SpeedPoint::savedFraction).max().orElse(0.4));
        BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
        return file;
    }

    /**
     * A low-rank checkpoint's ranks in a written report: {@code ranks.png}, a section of RESULTS.md (rank/full per
     * block and map; f = factored, d = dense reconstruction, o = original) and {@code lowrank} in results.json.
     */
    public static List<Path> ranks(Path out, Path checkpoint, List<dev.skipflow.model.compression.lowrank.LowRank.Layer> layers)
            throws IOException {
        Path plot = rankPlot(out.resolve("ranks.png"), "Kept rank per layer (" + checkpoint.getFileName() + ")", layers);
        Map<Integer, Map<String, String>> rows = new java.util.TreeMap<>();
        Set<String> names = new LinkedHashSet<>();
        for (var l : layers) {
            names.add(l.name());
            String kind = switch (l.stored()) {
                case FACTORED -> "f";
                case DENSE_RECONSTRUCTION -> "d";
                case ORIGINAL -> "o";
            };
            rows.computeIfAbsent(l.block(), k -> new LinkedHashMap<>()).put(l.name(), l.rank() + "/" + l.fullRank() + " " + kind);
        }
        Map<String, String> label = Map.of("wq", "q", "wk", "k", "wv", "v", "wo", "o", "w1", "gate", "w3", "up",
                "w2", "down");
        StringBuilder md = new StringBuilder("\n## Low-rank layers (").append(checkpoint).append(")\n\n")
                .append("Kept rank / full rank per map; f = two factors, d = dense reconstruction, o = the original matrix.\n\n")
                .append("| block |");
        names.forEach(n -> md.append(' ').append(label.getOrDefault(n, n)).append(" |"));
        md.append("\n| ---: |");
        names.forEach(n -> md.append(" ---: |"));
        md.append('\n');
        rows.forEach((b, r) -> {
            md.append("| ").append(b).append(" |");
            names.forEach(n -> md.append(' ').append(r.getOrDefault(n, "")).append(" |"));
            md.append('\n');
        });
        md.append("\n![ranks](ranks.png)\n");
        Path results = out.resolve("RESULTS.md");
        Files.writeString(results, md.toString(), java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.APPEND);
        Path json = out.resolve("results.json");
        if (Files.isRegularFile(json)) {
            ObjectMapper m = new ObjectMapper();
            ObjectNode root = (ObjectNode) m.readTree(json.toFile());
            ObjectNode lr = root.putObject("lowrank");
            lr.put("checkpoint", checkpoint.toString());
            lr.set("layers", m.valueToTree(layers.stream().map(l -> {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("block", l.block());
                o.put("name", l.name());
                o.put("rank", l.rank());
                o.put("fullRank", l.fullRank());
                o.put("stored", l.stored().name().toLowerCase(java.util.Locale.ROOT).replace('_', '-'));
                return o;
            }).toList()));
            m.writerWithDefaultPrettyPrinter().writeValue(json.toFile(), root);
        }
        return List.of(plot);
    }

    /**
     * A low-rank model's rank per block, one series per kind of map (q, k, v, o, gate, up, down):
     * what SoftLMs' learned thresholds chose, layer by layer.
     */
    public static Path rankPlot(Path file, String title, List<dev.skipflow.model.compression.lowrank.LowRank.Layer> layers)
            throws IOException {
        XYChart chart = new XYChartBuilder().width(900).height(560).title(title).xAxisTitle("block")
                .yAxisTitle("kept rank").build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        chart.getStyler().setMarkerSize(7);
        Map<String, List<dev.skipflow.model.compression.lowrank.LowRank.Layer>> byName = new LinkedHashMap<>();
        for (var l : layers) {
            byName.computeIfAbsent(l.name(), k -> new ArrayList<>()).add(l);
        }
        Map<String, String> label = Map.of("wq", "q", "wk", "k", "wv", "v", "wo", "o", "w1", "gate", "w3", "up",
                "w2", "down");
        int c = 0;
        for (var e : byName.entrySet()) {
            double[] x = e.getValue().stream().mapToDouble(l -> l.block()).toArray();
            double[] y = e.getValue().stream().mapToDouble(l -> l.rank()).toArray();
            XYSeries s = chart.addSeries(label.getOrDefault(e.getKey(), e.getKey()), x, y);
            s.setMarker(SeriesMarkers.CIRCLE);
            s.setLineColor(PALETTE[c % PALETTE.length]);
            s.setMarkerColor(PALETTE[c % PALETTE.length]);
            c++;
        }
        BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
        return file;
    }

    /**
     * Serving bundles against their original (serving protocol): a section of RESULTS.md per text, {@code bundles}
     * in results.json, and per text a plot of agreement against FLOPs saved, every configuration of every bundle
     * with the front over all of them.
     */
    public static List<Path> bundles(Path out, List<dev.skipflow.model.report.BundleReport.Point> points)
            throws IOException {
        List<Path> files = new ArrayList<>();
        Set<String> texts = new LinkedHashSet<>();
        points.forEach(p -> texts.add(p.text()));
        StringBuilder md = new StringBuilder("\n## Stacks against the original (serving protocol)\n\n")
                .append("Each bundle (`./skipflow stack`) runs as the job serves it: the prompt (first half of a document) ")
                .append("as one prefill, the continuation decoded token by token; agreement is the share of continuation ")
                .append("positions whose top-1 equals the original dense model's, in the same run; FLOPs saved against ")
                .append("the original, split by method.\n");
        List<Path> plots = new ArrayList<>();
        for (String text : texts) {
            List<dev.skipflow.model.report.BundleReport.Point> ps = points.stream().filter(p -> p.text().equals(text))
                    .toList();
            md.append("\n### ").append(text).append(String.format(" (original perplexity %.3f)%n%n",
                    ps.get(0).originalPerplexity()));
            md.append("| bundle | steps | configuration | agreement | greedy@32 | perplexity | FLOPs saved | compression | ")
                    .append("routing | exit | speed-up | on the front |\n| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ")
                    .append("---: | ---: | ---: | --- |\n");
            List<dev.skipflow.model.report.BundleReport.Point> front = front(ps,
                    dev.skipflow.model.report.BundleReport.Point::savedFraction,
                    dev.skipflow.model.report.BundleReport.Point::agreement, false);
            for (var p : ps) {
                md.append(String.format("| %s | %s | %s | %.2f%% | %.2f%% | %s | %.1f%% | %.1f%% | %.1f%% | %.1f%% | %.2fx | %s |%n",
                        p.bundle(), p.steps(), p.configuration(), 100 * p.agreement(), 100 * p.greedyAgreement(),
                        fmt(p.perplexity()), 100 * p.savedFraction(), 100 * p.compression(), 100 * p.routing(),
                        100 * p.exit(), p.speedup(), front.contains(p) ? "yes" : ""));
            }
            String slug = slug(text);
            Path plot = out.resolve("stacks-agreement-" + slug + ".png");
            XYChart chart = new XYChartBuilder().width(1000).height(600)
                    .title("Stacks: top-1 agreement with the original vs FLOPs saved (serving protocol): " + slug)
                    .xAxisTitle("FLOPs saved against the original (%)").yAxisTitle("Top-1 agreement (%)").build();
            chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
            chart.getStyler().setSeriesColors(PALETTE);
            chart.getStyler().setMarkerSize(8);
            Map<String, List<dev.skipflow.model.report.BundleReport.Point>> byBundle = new LinkedHashMap<>();
            ps.forEach(p -> byBundle.computeIfAbsent(p.bundle() + " (" + p.steps() + ")", k -> new ArrayList<>()).add(p));
            for (var e : byBundle.entrySet()) {
                XYSeries series = chart.addSeries(e.getKey(), e.getValue().stream().mapToDouble(p -> 100 * p.savedFraction())
                        .toArray(), e.getValue().stream().mapToDouble(p -> 100 * p.agreement()).toArray());
                series.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
                series.setMarker(SeriesMarkers.CIRCLE);
            }
            chart.addSeries("front over all", front.stream().mapToDouble(p -> 100 * p.savedFraction()).toArray(),
                    front.stream().mapToDouble(p -> 100 * p.agreement()).toArray()).setMarker(SeriesMarkers.NONE);
            BitmapEncoder.saveBitmap(chart, plot.toString(), BitmapEncoder.BitmapFormat.PNG);
            plots.add(plot);
            md.append("\n![stacks](").append(plot.getFileName()).append(")\n");
        }
        Path results = out.resolve("RESULTS.md");
        Files.writeString(results, md.toString(), java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.APPEND);
        Path json = out.resolve("results.json");
        ObjectMapper m = new ObjectMapper();
        ObjectNode root = Files.isRegularFile(json) ? (ObjectNode) m.readTree(json.toFile()) : m.createObjectNode();
        root.set("bundles", m.valueToTree(points));
        m.writerWithDefaultPrettyPrinter().writeValue(json.toFile(), root);
        files.add(results);
        files.addAll(plots);
        return files;
    }

    /** The speed-up that saved FLOPs alone would give, 1 / (1 - saved), over the plotted range of saved. */
    private static void addIdealSpeedup(XYChart chart, double from, double to) {
        int lo = (int) Math.floor(100 * from);
        int hi = (int) Math.ceil(100 * Math.min(to, 0.95));
        double[] x = new double[hi - lo + 1];
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            x[i] = lo + i;
            y[i] = 1.0 / (1.0 - x[i] / 100.0);
        }
        chart.addSeries("ideal 1/(1 - saved)", x, y).setMarker(SeriesMarkers.NONE);
    }

    private static Path markdown(Path out, Map<String, Object> machine, String command, Map<String, String> artifacts,
            List<ReportPoint> points, List<SpeedPoint> speed, boolean serving) throws IOException {
        StringBuilder md = new StringBuilder();
        md.append("# Savings report").append(serving ? " (serving protocol)" : "").append("\n\n");
        md.append("Generated by `").append(command).append("`. Do not edit by hand: rerun the command.\n\n");
        md.append("Machine: ");
        machine.forEach((k, v) -> md.append(k).append(" ").append(v).append("; "));
        md.append("\n\n");
        if (serving) {
            md.append("Serving protocol, as the job serves a request: each document's prompt (its first half, at least 16 ")
                    .append("tokens) runs as one prefill, its continuation is fed token by token through the decode path, ")
                    .append("and only the continuation is scored (the last prompt position's prediction included). ")
                    .append("Greedy@32 is the share of the first 32 greedily generated tokens equal to dense greedy's from ")
                    .append("the same prompt. ");
        }
        md.append("Each row runs the dense pass and the configuration side by side, document by document, in one run. ")
                .append("Agreement is the share of positions whose top-1 token equals dense's. FLOPs are counted analytically ")
                .append("for what ran, net of exit probes, key/value propagation and the router. Token-blocks not run counts ")
                .append("those a router skipped and those after an early exit. Speed-up is the median over documents of ")
                .append("dense seconds divided by the configuration's seconds on that document (the passes interleave ")
                .append("document by document, so machine noise hits both alike); a pass over one short document takes ")
                .append("milliseconds, so these are noisy, and the prefill section below is the wall-clock to quote.\n");
        if (!artifacts.isEmpty()) {
            md.append("\n## Trained artifacts\n\n")
                    .append("`learned` rows use FTP's trained router for each target sparsity (`./skipflow train-router ")
                    .append("--sparsity S` with its defaults), `exit` rows AdaInfer's exit classifier (`./skipflow ")
                    .append("train-exit` with its defaults) at its own threshold and at each swept one. The report trains ")
                    .append("those missing from its artifacts folder and reuses them afterwards.\n\n");
            artifacts.forEach((file, how) -> md.append("- `").append(file).append("`: ").append(how).append("\n"));
        }
        for (String text : texts(points)) {
            md.append("\n## ").append(text).append("\n\n");
            md.append("| method | configuration | target sparsity | token-blocks not run | FLOPs saved | perplexity | top-1 agreement | ")
                    .append(serving ? "greedy@32 | " : "").append("speed-up |\n");
            md.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ").append(serving ? "---: | " : "").append("---: |\n");
            for (ReportPoint p : points) {
                if (!p.text().equals(text)) {
                    continue;
                }
                md.append(String.format("| %s | %s | %.2f | %.1f%% | %.1f%% | %s | %.1f%% | %s%.2fx |%n", p.method(),
                        p.configuration(),
                        p.targetSparsity(), 100 * p.skippedFraction(), 100 * p.savedFraction(), fmt(p.perplexity()),
                        100 * p.agreement(), serving ? String.format("%.1f%% | ", 100 * p.greedyAgreement()) : "",
                        p.speedup()));
            }
            String slug = slug(text);
            md.append("\n![perplexity](perplexity-").append(slug).append(".png)\n");
            md.append("![agreement](agreement-").append(slug).append(".png)\n");
            md.append("![speed-up](speedup-").append(slug).append(".png)\n");
        }
        if (!speed.isEmpty()) {
            md.append("\n## Prefill wall-clock where compute dominates (").append(speed.get(0).model()).append(")\n\n");
            md.append("| router | FLOPs saved | dense tokens/s | routed tokens/s | speed-up |\n| --- | ---: | ---: | ---: | ---: |\n");
            for (SpeedPoint s : speed) {
                md.append(String.format("| %s | %.1f%% | %,.0f | %,.0f | %.2fx |%n", s.router(), 100 * s.savedFraction(),
                        s.denseTokensPerSecond(), s.routedTokensPerSecond(), s.speedup()));
            }
            md.append("\n![prefill speed-up](prefill-speedup-").append(speed.get(0).model()).append(".png)\n");
        }
        Path file = out.resolve("RESULTS.md");
        Files.writeString(file, md.toString());
        return file;
    }

    private static String fmt(double v) {
        return v >= 1000 ? String.format("%,.0f", v) : String.format("%.3f", v);
    }
}
