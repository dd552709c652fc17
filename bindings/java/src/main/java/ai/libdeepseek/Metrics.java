package ai.libdeepseek;

/** The engine's evaluation metrics. */
public final class Metrics {
    private Metrics() {}

    /** Exact ROC AUC of {@code scores} against 0/1 {@code labels} (flat vectors of equal length). */
    public static double auc(Tensor scores, Tensor labels) {
        long s = scores.acquire();
        try {
            long l = labels.acquire();
            try {
                return Native.metricAuc(s, l);
            } finally {
                labels.release();
            }
        } finally {
            scores.release();
        }
    }

    /** Mean binary cross-entropy of probabilities {@code probs} against 0/1 {@code labels}. */
    public static double logLoss(Tensor probs, Tensor labels) {
        long p = probs.acquire();
        try {
            long l = labels.acquire();
            try {
                return Native.metricLogLoss(p, l);
            } finally {
                labels.release();
            }
        } finally {
            probs.release();
        }
    }
}
