package dev.skipflow.model.compression;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.skipflow.model.ShippedArtifacts;
import dev.skipflow.model.io.CompressedCheckpoint;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Builds a serving bundle: the {@link StackPlan}'s compression steps in order, each step's checkpoint kept in
 * {@code steps/N-method/} (its manifest continues the chain back to the original model), the last one's files
 * copied to the bundle's top so {@code --model DIR} serves it, then a router and an exit classifier trained on the
 * compressed model beside them ({@link ShippedArtifacts#ROUTER}, {@link ShippedArtifacts#EXIT}) and
 * {@link #DESCRIPTION} saying how it was built.
 *
 * <p>Everything is built in a hidden folder beside {@code out} and renamed into place at the end, so a failed or
 * interrupted build (Ctrl-C or SIGTERM: a shutdown hook removes the folder; only kill -9 leaves it) leaves no half
 * bundle, and a {@code --force} rebuild keeps the old one until the new is whole.
 */
public final class StackBuilder {

    /** The bundle's record of its build. */
    public static final String DESCRIPTION = "stack.json";

    /** Runs one compression step: reads the model at {@code input}, writes a checkpoint folder at {@code output}. */
    @FunctionalInterface
    public interface StepRunner {
        void run(StackPlan.Step step, Path input, Path output) throws Exception;
    }

    /** Trains an artifact (router or exit classifier) for the model at {@code model}, written to {@code artifact}. */
    @FunctionalInterface
    public interface ArtifactTrainer {
        void train(Path model, Path artifact) throws Exception;
    }

    /** What was built, with the wall-clock seconds of each part. */
    public record Result(Path bundle, List<Part> parts) {}

    /** One part of the build: a step ({@code steps/1-prune}), {@code router} or {@code exit}. */
    public record Part(String name, String what, double seconds) {}

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private StackBuilder() {}

    /**
     * @param input the model the first step reads (a .bin, Hugging Face or checkpoint folder), as the runner knows it
     * @param router null for no router
     * @param exit null for no exit classifier
     * @param settings recorded in {@link #DESCRIPTION} (the options each part ran with)
     */
    public static Result build(Path input, StackPlan plan, Path out, boolean force, StepRunner steps,
            ArtifactTrainer router, ArtifactTrainer exit, Map<String, Object> settings, Consumer<String> log) {
        CheckpointOutput.requireWritable(out, force);
        Path target = out.toAbsolutePath().normalize();
        Path parent = target.getParent();
        String stamp = Long.toString(System.nanoTime(), 36);
        Path staging = parent.resolve("." + target.getFileName() + ".stack-" + stamp);
        List<Part> parts = new ArrayList<>();
        // Ctrl-C or SIGTERM while building: the JVM's shutdown hooks run, so the staging folder goes too
        Thread cleanup = new Thread(() -> deleteQuietly(staging), "stack-cleanup");
        Runtime.getRuntime().addShutdownHook(cleanup);
        try {
            Files.createDirectories(staging.resolve("steps"));
            Path current = input;
            for (int i = 0; i < plan.steps().size(); i++) {
                StackPlan.Step step = plan.steps().get(i);
                String folder = step.folder(i);
                log.accept("step " + (i + 1) + " of " + plan.steps().size() + ": " + step + " -> " + folder);
                long t0 = System.nanoTime();
                Path output = staging.resolve(folder);
                steps.run(step, current, output);
                if (!CompressedCheckpoint.isCompressed(output)) {
                    throw new IllegalStateException("step " + step + " wrote no checkpoint at " + output);
                }
                parts.add(new Part(folder, step.toString(), (System.nanoTime() - t0) / 1e9));
                current = output;
            }
            try (Stream<Path> files = Files.list(current)) {
                for (Path f : files.filter(Files::isRegularFile).toList()) {
                    Files.copy(f, staging.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
                }
            }
            if (router != null) {
                log.accept("training the router on the compressed model");
                long t0 = System.nanoTime();
                router.train(staging, staging.resolve(ShippedArtifacts.ROUTER));
                parts.add(new Part("router", ShippedArtifacts.ROUTER, (System.nanoTime() - t0) / 1e9));
            }
            if (exit != null) {
                log.accept("training the exit classifier on the compressed model");
                long t0 = System.nanoTime();
                exit.train(staging, staging.resolve(ShippedArtifacts.EXIT));
                parts.add(new Part("exit", ShippedArtifacts.EXIT, (System.nanoTime() - t0) / 1e9));
            }
            Map<String, Object> description = new LinkedHashMap<>();
            description.put("input", input.toString());
            description.put("steps", plan.toString());
            description.put("parts", parts);
            description.put("settings", settings);
            JSON.writeValue(staging.resolve(DESCRIPTION).toFile(), description);
            CheckpointOutput.moveIntoPlace(staging, target);
            return new Result(target, parts);
        } catch (IOException e) {
            deleteQuietly(staging);
            throw new UncheckedIOException("cannot build the bundle " + out + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            deleteQuietly(staging);
            throw e;
        } catch (Exception e) {
            deleteQuietly(staging);
            throw new IllegalStateException(e.getMessage(), e);
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(cleanup);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running or about to: nothing to undo
            }
        }
    }

    private static void deleteQuietly(Path dir) {
        try {
            CheckpointOutput.delete(dir);
        } catch (IOException ignored) {
            // best effort: the folder is hidden and named after the bundle
        }
    }
}
