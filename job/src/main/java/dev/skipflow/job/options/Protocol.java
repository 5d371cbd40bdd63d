package dev.skipflow.job.options;

/** {@code --protocol}: how quality is scored (DESIGN §6; docs/PERFORMANCE.md, "The serving protocol"). */
public enum Protocol {
    /** Every position of a document after one prefill: the papers' log-likelihood setting. */
    prefill,
    /** The first half prefilled, the rest decoded token by token and scored, as the job serves a request. */
    serving
}
