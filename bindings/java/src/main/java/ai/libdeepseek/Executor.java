package ai.libdeepseek;

/**
 * A compiled graph. {@link #run} may be called from any number of threads at once; close()
 * waits for the runs in flight. Outputs are new tensors owned by the caller.
 */
public final class Executor extends NativeHandle {
    /** Compiles {@code graph} with the default options. */
    public Executor(Graph graph) {
        this(graph, null);
    }

    /** Compiles {@code graph} with {@code options} ({@code null} = defaults). */
    public Executor(Graph graph, ExecOptions options) {
        super(compile(graph, options), Native::executorFree);
    }

    private static long compile(Graph graph, ExecOptions options) {
        long g = graph.acquire();
        try {
            long o = NativeHandle.acquireOrNull(options);
            try {
                return Native.executorNew(g, o);
            } finally {
                NativeHandle.releaseOrNull(options);
            }
        } finally {
            graph.release();
        }
    }

    /**
     * Runs the graph: feeds {@code feeds[i]} as input {@code feedNames[i]} and returns the outputs
     * named in {@code fetchNames}, in order. Errors (an unknown name, a feed of the wrong dtype or
     * shape) are the engine's, as {@link DeepseekException}.
     */
    public Tensor[] run(String[] feedNames, Tensor[] feeds, String... fetchNames) {
        return run(feedNames, feeds, fetchNames, null);
    }

    /** As {@link #run(String[], Tensor[], String...)}, stopped by {@code cancel} ({@code null} = none). */
    public Tensor[] run(String[] feedNames, Tensor[] feeds, String[] fetchNames, CancelToken cancel) {
        if (feedNames.length != feeds.length) {
            throw new IllegalArgumentException(feedNames.length + " feed names for " + feeds.length + " tensors");
        }
        byte[] feedBytes = Native.names(feedNames);
        byte[] fetchBytes = Native.names(fetchNames);
        long h = acquire();
        try {
            long[] in = NativeHandle.acquireAll(feeds);
            try {
                long c = NativeHandle.acquireOrNull(cancel);
                try {
                    return Tensor.wrap(Native.executorRun(h, feedBytes, feeds.length, in, fetchBytes,
                            fetchNames.length, c));
                } finally {
                    NativeHandle.releaseOrNull(cancel);
                }
            } finally {
                NativeHandle.releaseAll(feeds, feeds.length);
            }
        } finally {
            release();
        }
    }
}
