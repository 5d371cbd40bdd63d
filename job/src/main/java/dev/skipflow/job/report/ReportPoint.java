package dev.skipflow.job.report;

/**
 * One measured configuration on one text, with the dense pass of the same run beside it.
 *
 * @param method dense, static, random, importance or shortgpt
 * @param targetSparsity the sparsity asked for (0 for dense)
 * @param skippedFraction token-blocks actually skipped
 * @param speedup dense seconds / routed seconds, measured document by document in the same run
 */
public record ReportPoint(String text, String method, String configuration, double targetSparsity, double perplexity,
        double densePerplexity, double agreement, double savedFraction, double skippedFraction, double seconds,
        double denseSeconds, double speedup, double tokensPerSecond) {}
