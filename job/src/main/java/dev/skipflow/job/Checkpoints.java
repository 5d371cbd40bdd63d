package dev.skipflow.job;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import org.apache.flink.core.fs.FileStatus;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.Path;

/**
 * Finding what to restore from. Flink writes a job's checkpoints to {@code DIR/<job id>/chk-<n>/}; a checkpoint is
 * complete once its {@code _metadata} file exists (written last). A restarted job has a new job id, so the latest
 * completed checkpoint is the newest {@code _metadata} over all job folders in DIR.
 */
public final class Checkpoints {

    private Checkpoints() {}

    /** {@code dir} as a URI Flink's file systems take: a plain path becomes an absolute file: URI. */
    public static String uri(String dir) {
        if (dir.matches("^[a-zA-Z][a-zA-Z0-9+.-]*://.*") || dir.startsWith("file:")) {
            return dir;
        }
        return java.nio.file.Path.of(dir).toAbsolutePath().normalize().toUri().toString();
    }

    /**
     * What the job restores from, or null: {@code --resume PATH} (a checkpoint, savepoint or checkpoint directory),
     * else the latest completed checkpoint in {@code --checkpoint-dir} unless {@code --fresh}.
     */
    public static String restorePath(JobOptions o) {
        if (o.resume != null) {
            String found = resolve(uri(o.resume));
            if (found == null) {
                throw new IllegalArgumentException("--resume " + o.resume + ": no completed checkpoint or savepoint there "
                        + "(a chk-N or savepoint folder with a _metadata file, or a checkpoint directory holding one)");
            }
            return found;
        }
        if (o.checkpointDir != null && !o.fresh) {
            return latest(uri(o.checkpointDir));
        }
        return null;
    }

    /** A checkpoint/savepoint folder (or its _metadata) as is; a checkpoint directory as its latest checkpoint. */
    static String resolve(String uri) {
        try {
            Path p = new Path(URI.create(uri));
            FileSystem fs = p.getFileSystem();
            if (!fs.exists(p)) {
                return null;
            }
            if (p.getName().equals("_metadata")) {
                return p.getParent().toString();
            }
            if (fs.exists(new Path(p, "_metadata"))) {
                return p.toString();
            }
            return latest(uri);
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + uri, e);
        }
    }

    /** The newest completed checkpoint under {@code dir} (job folders, then chk-N folders), or null. */
    public static String latest(String dir) {
        try {
            Path root = new Path(URI.create(dir));
            FileSystem fs = root.getFileSystem();
            if (!fs.exists(root)) {
                return null;
            }
            Path best = null;
            long bestTime = Long.MIN_VALUE;
            long bestId = Long.MIN_VALUE;
            for (FileStatus job : list(fs, root)) {
                if (!job.isDir()) {
                    continue;
                }
                for (FileStatus chk : list(fs, job.getPath())) {
                    String name = chk.getPath().getName();
                    if (!chk.isDir() || !name.matches("chk-\\d+")) {
                        continue;
                    }
                    Path metadata = new Path(chk.getPath(), "_metadata");
                    if (!fs.exists(metadata)) {
                        continue; // in progress, or interrupted by a kill
                    }
                    long time = fs.getFileStatus(metadata).getModificationTime();
                    long id = Long.parseLong(name.substring(4));
                    if (time > bestTime || (time == bestTime && id > bestId)) {
                        best = chk.getPath();
                        bestTime = time;
                        bestId = id;
                    }
                }
            }
            return best == null ? null : best.toString();
        } catch (IOException e) {
            throw new UncheckedIOException("looking for checkpoints in " + dir, e);
        }
    }

    private static FileStatus[] list(FileSystem fs, Path p) throws IOException {
        FileStatus[] s = fs.listStatus(p);
        return s == null ? new FileStatus[0] : s;
    }
}
