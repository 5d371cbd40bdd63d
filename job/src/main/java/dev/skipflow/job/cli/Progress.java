package dev.skipflow.job.cli;

import dev.skipflow.model.training.RouterRecipe;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import me.tongfei.progressbar.ProgressBarConsumer;

/** Progress bars go to stderr so stdout stays machine-readable. */
final class Progress {

    private Progress() {}

    static ProgressBarConsumer stderrConsumer() {
        return new ConsoleProgressBarConsumer(System.err);
    }

    /** A progress bar on stderr for one stage of long work. */
    static ProgressBar bar(String name, long total) {
        return new ProgressBarBuilder().setTaskName(name).setInitialMax(total).setStyle(ProgressBarStyle.ASCII)
                .setConsumer(stderrConsumer()).build();
    }

    /** A stage of long work (training, the report) shown as a progress bar. */
    static RouterRecipe.Phase phase(String name, int total) {
        ProgressBar bar = bar(name, total);
        return new RouterRecipe.Phase() {
            @Override
            public void accept(int done) {
                bar.stepTo(done);
            }

            @Override
            public void close() {
                bar.close();
            }

            @Override
            public void status(String what) {
                bar.setExtraMessage(what);
            }
        };
    }
}
