package dev.skipflow.model.compression;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;

/** Picks calibration samples from documents, as LLM-Pruner draws its 10 samples of 64 tokens. */
public final class Calibration {

    private Calibration() {}

    /**
     * {@code count} samples of {@code length} tokens: documents that long (truncated to it) drawn at random with
     * {@code seed}; when too few are that long, the longest of the others fill up.
     */
    public static List<int[]> samples(List<int[]> docs, int count, int length, long seed) {
        if (count < 1 || length < 2) {
            throw new IllegalArgumentException("calibration needs at least 1 sample of at least 2 tokens, got " + count
                    + " of " + length);
        }
        List<int[]> longEnough = new ArrayList<>();
        List<int[]> shorter = new ArrayList<>();
        for (int[] d : docs) {
            (d.length >= length ? longEnough : shorter).add(d);
        }
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int i = longEnough.size() - 1; i > 0; i--) { // Fisher-Yates
            int j = rnd.nextInt(i + 1);
            int[] t = longEnough.get(i);
            longEnough.set(i, longEnough.get(j));
            longEnough.set(j, t);
        }
        shorter.sort(Comparator.comparingInt((int[] d) -> d.length).reversed());
        List<int[]> out = new ArrayList<>();
        for (int[] d : longEnough) {
            if (out.size() == count) {
                break;
            }
            out.add(Arrays.copyOf(d, length));
        }
        for (int[] d : shorter) {
            if (out.size() == count || d.length < 2) {
                break;
            }
            out.add(d);
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("the calibration text has no document of at least 2 tokens");
        }
        return out;
    }
}
