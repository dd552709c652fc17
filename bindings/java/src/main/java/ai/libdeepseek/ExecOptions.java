package ai.libdeepseek;

/**
 * How an {@link Executor} compiles a graph (defaults: opt level 2, the CPU, inter-op threads 0).
 * Setters return {@code this}; one thread at a time.
 */
public final class ExecOptions extends NativeHandle {
    /** Options with the defaults. */
    public ExecOptions() {
        super(Native.execOptionsNew(), Native::execOptionsFree);
    }

    /** Optimisation level 0, 1 or 2 (see {@code ds_exec_options_set_opt_level}). */
    public ExecOptions optLevel(int level) {
        long h = acquire();
        try {
            Native.execOptionsSetOptLevel(h, level);
        } finally {
            release();
        }
        return this;
    }

    /**
     * How many independent nodes may run at once: 0 = the pool size where the graph runs
     * matrix products of unequal size side by side, else one at a time; 1 = one at a time
     * (for services that already run one request per thread).
     */
    public ExecOptions interOpThreads(int n) {
        long h = acquire();
        try {
            Native.execOptionsSetInterOpThreads(h, n);
        } finally {
            release();
        }
        return this;
    }
}
