package dev.skipflow.job.cli;

import dev.skipflow.model.io.ModelFormatException;
import java.io.UncheckedIOException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code ./skipflow}: the command line of the project. */
@Command(name = "skipflow", mixinStandardHelpOptions = true, version = "skipflow 0.1.0",
        description = "Adaptive-compute LLM inference on streams (Kafka + Flink + DJL).",
        subcommands = {DemoCommand.class, JobCommand.class, BrokerCommand.class, GenerateCommand.class, EvalCommand.class,
            BenchCommand.class, ReportCommand.class, TrainRouterCommand.class, TrainExitCommand.class, PruneCommand.class,
            LowrankCommand.class, MoeCommand.class, StackCommand.class, SqlCommand.class})
public final class SkipflowCli implements Runnable {

    @Override
    public void run() {
        new CommandLine(this).usage(System.err);
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs a command; user errors print one clear line and exit 2 instead of a stack trace. */
    public static int execute(String... args) {
        CommandLine cli = new CommandLine(new SkipflowCli());
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof IllegalArgumentException || e instanceof ModelFormatException
                    || e instanceof UncheckedIOException) {
                cmd.getErr().println("skipflow " + cmd.getCommandName() + ": " + e.getMessage());
                return 2;
            }
            throw e;
        });
        return cli.execute(args);
    }
}
