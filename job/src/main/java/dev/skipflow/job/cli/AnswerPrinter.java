package dev.skipflow.job.cli;

import dev.skipflow.job.local.AnswerCollector;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;

/**
 * What {@code demo} and {@code sql} do after sending their sample prompts: print answers as they arrive until
 * Ctrl-C, or, with {@code --once}, until every sample is answered (exit 0) or the timeout passes (exit 1).
 */
final class AnswerPrinter {

    private AnswerPrinter() {}

    /**
     * @param pending ids still unanswered (emptied as answers arrive)
     * @param print prints one answer; returns the request id it answers, or null (a dead letter, say)
     */
    static int printUntilAnswered(String command, AnswerCollector answers, Set<String> pending, boolean once,
            int timeoutSeconds, Function<AnswerCollector.Answer, String> print) {
        int samples = pending.size();
        AtomicBoolean stop = new AtomicBoolean();
        Thread main = Thread.currentThread();
        Thread hook = new Thread(() -> {
            stop.set(true);
            main.interrupt();
        });
        Runtime.getRuntime().addShutdownHook(hook);
        long deadline = System.nanoTime() + Duration.ofSeconds(timeoutSeconds).toNanos();
        while (!stop.get()) {
            try {
                answers.poll(Duration.ofMillis(250), a -> {
                    String id = print.apply(a);
                    if (id != null) {
                        pending.remove(id);
                    }
                });
            } catch (org.apache.kafka.common.errors.InterruptException e) {
                break;
            }
            if (once && pending.isEmpty()) {
                System.err.println("skipflow " + command + ": all " + samples + " prompts answered");
                Runtime.getRuntime().removeShutdownHook(hook);
                return 0;
            }
            if (once && System.nanoTime() > deadline) {
                System.err.println("skipflow " + command + ": timed out with " + pending.size() + " prompts unanswered: "
                        + pending);
                Runtime.getRuntime().removeShutdownHook(hook);
                return 1;
            }
        }
        return 0;
    }
}
