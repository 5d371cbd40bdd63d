package dev.skipflow.model.compression.lowrank;

import org.ejml.data.FMatrixRMaj;
import org.ejml.dense.row.SingularOps_FDRM;
import org.ejml.dense.row.factory.DecompositionFactory_FDRM;
import org.ejml.interfaces.decomposition.SingularValueDecomposition_F32;

/**
 * The thin singular value decomposition of a row-major {@code [out, in]} matrix, {@code W = U diag(s) V^T}, through
 * EJML's dense float SVD (DJL 0.35.1 has no SVD on the PyTorch engine: no {@code linalg} on its NDArray). Singular
 * values come out decreasing.
 *
 * @param u {@code [out, k]}, row-major
 * @param s {@code [k]}, decreasing
 * @param vt {@code [k, in]}, row-major
 */
public record Svd(int out, int in, int k, float[] u, float[] s, float[] vt) {

    public Svd {
        if (u.length != (long) out * k || s.length != k || vt.length != (long) k * in) {
            throw new IllegalArgumentException("SVD factors do not fit [" + out + ", " + in + "] at k = " + k);
        }
    }

    public static Svd of(float[] rowMajor, int out, int in) {
        if (rowMajor.length != (long) out * in) {
            throw new IllegalArgumentException("matrix has " + rowMajor.length + " values, expected " + out + " x " + in);
        }
        FMatrixRMaj m = new FMatrixRMaj(out, in, true, rowMajor.clone());
        SingularValueDecomposition_F32<FMatrixRMaj> d = DecompositionFactory_FDRM.svd(out, in, true, true, true);
        if (!d.decompose(m)) {
            throw new IllegalStateException("the SVD of a [" + out + ", " + in + "] matrix did not converge");
        }
        FMatrixRMaj u = d.getU(null, false);
        FMatrixRMaj vt = d.getV(null, true);
        int k = Math.min(out, in);
        float[] s = d.getSingularValues().clone();
        SingularOps_FDRM.descendingOrder(u, false, s, d.numberOfSingularValues(), vt, true);
        if (u.numCols != k || vt.numRows != k) {
            throw new IllegalStateException("EJML returned U " + u.numRows + "x" + u.numCols + " and V^T " + vt.numRows
                    + "x" + vt.numCols + " for a [" + out + ", " + in + "] matrix");
        }
        return new Svd(out, in, k, u.data.clone(), java.util.Arrays.copyOf(s, k), vt.data.clone());
    }

    /** {@code U_r diag(values_r) V_r^T} as a row-major {@code [out, in]} matrix. */
    public float[] reconstruct(int rank, float[] values) {
        float[] w = new float[out * in];
        for (int j = 0; j < rank; j++) {
            float sv = values[j];
            if (sv == 0f) {
                continue;
            }
            for (int i = 0; i < out; i++) {
                float a = u[i * k + j] * sv;
                int wo = i * in;
                int vo = j * in;
                for (int c = 0; c < in; c++) {
                    w[wo + c] += a * vt[vo + c];
                }
            }
        }
        return w;
    }

    /** The first {@code rank} rows of {@code V^T}: {@code [rank, in]}. */
    public float[] vtRows(int rank) {
        return java.util.Arrays.copyOf(vt, rank * in);
    }

    /** {@code U_r diag(values_r)}: {@code [out, rank]}. */
    public float[] scaledU(int rank, float[] values) {
        float[] b = new float[out * rank];
        for (int i = 0; i < out; i++) {
            for (int j = 0; j < rank; j++) {
                b[i * rank + j] = u[i * k + j] * values[j];
            }
        }
        return b;
    }
}
