package ai.libdeepseek;

/**
 * The engine's synthetic Criteo-shaped click stream: 13 dense features and 26 categorical
 * fields per sample, labels drawn from a known model. Samples depend only on the seed and their
 * index. Thread-safe (concurrent draws take turns).
 */
public final class CtrGenerator extends NativeHandle {
    /** Dense features per sample ({@code DS_CTR_NUM_DENSE}). */
    public static final int NUM_DENSE = 13;
    /** Categorical fields per sample ({@code DS_CTR_NUM_FIELDS}). */
    public static final int NUM_FIELDS = 26;

    /**
     * One draw: dense f32 {@code [n, 13]}, ids i64 {@code [n, 26]}, labels f32 {@code [n]}, and the
     * true click probabilities f32 {@code [n]} (null when not asked for). Closing it closes all four.
     */
    public record Batch(Tensor dense, Tensor ids, Tensor labels, Tensor probs) implements AutoCloseable {
        @Override
        public void close() {
            dense.close();
            ids.close();
            labels.close();
            if (probs != null) probs.close();
        }
    }

    /** A generator with the default configuration (26 fields of 100,000 ids, Zipf exponent 1.1). */
    public CtrGenerator(long seed) {
        this(seed, null, Double.NaN);
    }

    /**
     * A generator with {@code vocabSizes} ids per field (26 entries; {@code null} = default) and
     * the ids' Zipf exponent ({@code NaN} = default).
     */
    public CtrGenerator(long seed, long[] vocabSizes, double zipfExponent) {
        super(Native.ctrGeneratorNew(vocabSizes, zipfExponent, seed), Native::ctrGeneratorFree);
    }

    /** The next {@code n} samples, with the true probabilities. */
    public Batch next(long n) {
        return next(n, true);
    }

    /** The next {@code n} samples; the true probabilities only when {@code withProbs}. */
    public Batch next(long n, boolean withProbs) {
        long h = acquire();
        try {
            Tensor[] t = Tensor.wrap(Native.ctrGeneratorNext(h, n, withProbs));
            return new Batch(t[0], t[1], t[2], withProbs ? t[3] : null);
        } finally {
            release();
        }
    }

    /** Samples drawn so far (the index of the next sample). */
    public long cursor() {
        long h = acquire();
        try {
            return Native.ctrGeneratorCursor(h);
        } finally {
            release();
        }
    }

    /** Positions the stream so the next sample drawn is sample {@code cursor}. */
    public void seek(long cursor) {
        long h = acquire();
        try {
            Native.ctrGeneratorSeek(h, cursor);
        } finally {
            release();
        }
    }
}
