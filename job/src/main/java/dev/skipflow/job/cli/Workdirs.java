package dev.skipflow.job.cli;

import java.nio.file.Path;

/** Where local runs keep their files: target/local under the repository (or the working directory). */
final class Workdirs {

    private Workdirs() {}

    static Path local() {
        String home = System.getProperty("skipflow.home");
        return (home != null ? Path.of(home) : Path.of(".")).resolve("target").resolve("local").toAbsolutePath();
    }
}
