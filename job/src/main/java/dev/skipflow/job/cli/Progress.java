package dev.skipflow.job.cli;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBarConsumer;

/** Progress bars go to stderr so stdout stays machine-readable. */
final class Progress {

    private Progress() {}

    static ProgressBarConsumer stderrConsumer() {
        return new ConsoleProgressBarConsumer(System.err);
    }
}
