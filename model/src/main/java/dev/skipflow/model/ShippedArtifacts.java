package dev.skipflow.model;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Router and exit artifacts that ship with skipflow for its default models, in {@code artifacts/<fingerprint>/}
 * of the installation ({@code skipflow.home}, else the working directory): found by the fingerprint of the model
 * being served, so they can never be applied to another model.
 */
public final class ShippedArtifacts {

    /** What ships for one model; either path may be null. */
    public record Found(Path router, Path exit) {
        public boolean any() {
            return router != null || exit != null;
        }
    }

    private ShippedArtifacts() {}

    public static Found forModel(String fingerprint) {
        String home = System.getProperty("skipflow.home");
        Path dir = (home == null ? Path.of(".") : Path.of(home)).resolve("artifacts").resolve(fingerprint);
        Path router = dir.resolve("router.json");
        Path exit = dir.resolve("exit.json");
        return new Found(Files.isRegularFile(router) ? router : null, Files.isRegularFile(exit) ? exit : null);
    }
}
