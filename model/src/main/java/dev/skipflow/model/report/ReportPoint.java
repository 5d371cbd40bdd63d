package dev.skipflow.model.report;

/**
 * One measured configuration on one text, with the dense pass of the same run beside it.
 *
 * @param method dense, static, random, importance, shortgpt, learned, exit or learned+exit
 * @param targetSparsity the router's target sparsity (0 for dense and exit alone)
 * @param skippedFraction token-blocks not run: skipped by the router or left after an early exit
 * @param speedup the median over documents of dense seconds / configuration seconds on that document, same run
 * @param greedyAgreement serving protocol: share of the first 32 greedy tokens equal to dense greedy's; null under
 *     the prefill protocol
 */
public record ReportPoint(String text, String method, String configuration, double targetSparsity, double perplexity,
        double densePerplexity, double agreement, double savedFraction, double skippedFraction, double seconds,
        double denseSeconds, double speedup, double tokensPerSecond, Double greedyAgreement) {}
