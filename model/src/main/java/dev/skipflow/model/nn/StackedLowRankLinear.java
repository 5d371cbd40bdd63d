package dev.skipflow.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import java.util.ArrayList;
import java.util.List;

/**
 * Several maps of the same input (q|k|v, gate|up), each two factors {@code W = B A} or a dense matrix, with their
 * outputs side by side: <em>one</em> matmul {@code h = x [A_1; W_2; A_3; ...]^T} computes every first factor and every
 * dense part at once, then each factored part's slice of {@code h} goes through its own second factor
 * ({@code h[:, r] B_i^T}; no block-diagonal matrix, so no wasted work), and the outputs are concatenated. Dense parts
 * that sit next to each other are one slice of {@code h}. Against {@link StackedLinear} of {@link LowRankLinear}s this
 * saves one matmul per extra part and runs the first factors as one wide matmul instead of several thin ones; the
 * FLOPs are exactly those of the parts.
 */
public final class StackedLowRankLinear implements Linear {

    /**
     * One part, host row-major: {@code first} is {@code A [rank, in]} for a factored part or {@code W [out, in]} for a
     * dense one ({@code rank == 0}); {@code second} is {@code B [out, rank]} (null when dense); bias {@code [out]} or
     * null.
     */
    public record Part(int out, int rank, float[] first, float[] second, float[] bias) {
        public boolean dense() {
            return rank == 0;
        }

        /** Columns of {@code h} this part takes. */
        int width() {
            return dense() ? out : rank;
        }

        long flops(int in, long rows) {
            return dense() ? Linear.denseFlops(in, out, bias != null, rows)
                    : rows * (2L * rank * (in + out) + (bias != null ? out : 0));
        }
    }

    /** One step of the assembly: a slice of {@code h}, through a second factor or taken as it is (dense parts). */
    private record Piece(NDIndex columns, NDArray secondT) {}

    private final NDArray firstT; // [in, sum of widths]
    private final List<Piece> pieces;
    private final NDArray bias; // [out] (zeros for unbiased parts), or null when no part has one
    private final List<Part> parts;
    private final int in;
    private final int out;

    private StackedLowRankLinear(NDArray firstT, List<Piece> pieces, NDArray bias, List<Part> parts, int in, int out) {
        this.firstT = firstT;
        this.pieces = pieces;
        this.bias = bias;
        this.parts = parts;
        this.in = in;
        this.out = out;
    }

    public static StackedLowRankLinear of(NDManager manager, int in, List<Part> parts) {
        if (parts.isEmpty()) {
            throw new IllegalArgumentException("a stack needs at least one part");
        }
        int width = 0;
        int out = 0;
        boolean biased = false;
        for (Part p : parts) {
            if (p.first().length != (long) p.width() * in) {
                throw new IllegalArgumentException("part first factor has " + p.first().length + " values, expected "
                        + (long) p.width() * in);
            }
            if (!p.dense() && (p.second() == null || p.second().length != (long) p.out() * p.rank())) {
                throw new IllegalArgumentException("part second factor must be [" + p.out() + ", " + p.rank() + "]");
            }
            width += p.width();
            out += p.out();
            biased |= p.bias() != null;
        }
        float[] first = new float[Math.multiplyExact(width, in)];
        float[] b = biased ? new float[out] : null;
        int row = 0;
        int col = 0;
        List<Piece> pieces = new ArrayList<>();
        int denseFrom = -1; // start in h of the run of dense parts being merged, or -1
        for (Part p : parts) {
            System.arraycopy(p.first(), 0, first, row * in, p.first().length);
            if (p.bias() != null) {
                System.arraycopy(p.bias(), 0, b, col, p.out());
            }
            if (p.dense()) {
                if (denseFrom < 0) {
                    denseFrom = row;
                }
            } else {
                if (denseFrom >= 0) {
                    pieces.add(new Piece(Tensors.columns(denseFrom, row), null));
                    denseFrom = -1;
                }
                pieces.add(new Piece(Tensors.columns(row, row + p.rank()),
                        Tensors.transposed(manager, p.second(), p.out(), p.rank())));
            }
            row += p.width();
            col += p.out();
        }
        if (denseFrom >= 0) {
            pieces.add(new Piece(Tensors.columns(denseFrom, row), null));
        }
        return new StackedLowRankLinear(Tensors.transposed(manager, first, width, in), List.copyOf(pieces),
                b == null ? null : manager.create(b), List.copyOf(parts), in, out);
    }

    /** The parts, in output order (host form, as given). */
    public List<Part> parts() {
        return parts;
    }

    /** Matmuls per forward: one for every first factor and dense part, one per factored part. */
    public int matmuls() {
        int n = 1;
        for (Piece p : pieces) {
            n += p.secondT() == null ? 0 : 1;
        }
        return n;
    }

    @Override
    public int in() {
        return in;
    }

    @Override
    public int out() {
        return out;
    }

    @Override
    public NDArray forward(NDArray x) {
        NDArray h = x.matMul(firstT);
        NDArray y;
        if (pieces.size() == 1) {
            Piece p = pieces.get(0);
            y = p.secondT() == null ? h : h.matMul(p.secondT());
        } else {
            NDList outs = new NDList(pieces.size());
            for (Piece p : pieces) {
                NDArray slice = h.get(p.columns());
                outs.add(p.secondT() == null ? slice : slice.matMul(p.secondT()));
            }
            y = NDArrays.concat(outs, -1);
        }
        return bias == null ? y : y.add(bias);
    }

    @Override
    public long flops(long rows) {
        long f = 0;
        for (Part p : parts) {
            f += p.flops(in, rows);
        }
        return f;
    }
}
