package dev.skipflow.model.training;

/** How much calibration text {@code train-exit} reads unless told otherwise; {@code report} trains on the same. */
public final class ExitTrainingDefaults {

    /** Calibration documents. */
    public static final int DOCUMENTS = 400;

    /** Tokens per calibration document, BOS included. */
    public static final int MAX_LEN = 256;

    private ExitTrainingDefaults() {}
}
