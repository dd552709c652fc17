package ai.libdeepseek;

/**
 * Trains a graph: its parameters, loss, optimizers and checkpoints. The engine runs one call at a
 * time per trainer (concurrent calls wait their turn), so it may be shared between threads;
 * close() waits for the call in flight.
 */
public final class Trainer extends NativeHandle {
    /**
     * A trainer minimising the scalar output {@code loss} of {@code graph} with {@code options}
     * ({@code null} = defaults). Graph and options may be closed right after.
     */
    public Trainer(Graph graph, String loss, TrainerOptions options) {
        super(create(graph, loss, options), Native::trainerFree);
    }

    private static long create(Graph graph, String loss, TrainerOptions options) {
        long g = graph.acquire();
        try {
            long o = NativeHandle.acquireOrNull(options);
            try {
                return Native.trainerNew(g, Native.cstr(loss), o);
            } finally {
                NativeHandle.releaseOrNull(options);
            }
        } finally {
            graph.release();
        }
    }

    private static void checkFeeds(String[] names, Tensor[] feeds) {
        if (names.length != feeds.length) {
            throw new IllegalArgumentException(names.length + " feed names for " + feeds.length + " tensors");
        }
    }

    /** One training step on the named feeds; returns the loss. */
    public double step(String[] feedNames, Tensor[] feeds) {
        checkFeeds(feedNames, feeds);
        byte[] names = Native.names(feedNames);
        long h = acquire();
        try {
            long[] in = NativeHandle.acquireAll(feeds);
            try {
                return Native.trainerStep(h, names, feeds.length, in);
            } finally {
                NativeHandle.releaseAll(feeds, feeds.length);
            }
        } finally {
            release();
        }
    }

    /** Runs the forward graph with the current parameters; returns the named outputs. */
    public Tensor[] evaluate(String[] feedNames, Tensor[] feeds, String... fetchNames) {
        checkFeeds(feedNames, feeds);
        byte[] names = Native.names(feedNames);
        byte[] fetch = Native.names(fetchNames);
        long h = acquire();
        try {
            long[] in = NativeHandle.acquireAll(feeds);
            try {
                return Tensor.wrap(Native.trainerEvaluate(h, names, feeds.length, in, fetch, fetchNames.length));
            } finally {
                NativeHandle.releaseAll(feeds, feeds.length);
            }
        } finally {
            release();
        }
    }

    /** An inference-only graph computing {@code outputs} with the current weights frozen in. */
    public Graph export(String... outputs) {
        byte[] names = Native.names(outputs);
        long h = acquire();
        try {
            return new Graph(Native.trainerExport(h, names, outputs.length));
        } finally {
            release();
        }
    }

    /** Writes a checkpoint now (needs a checkpoint directory in the options). */
    public void saveCheckpoint() {
        long h = acquire();
        try {
            Native.trainerSaveCheckpoint(h);
        } finally {
            release();
        }
    }

    /** Optimizer steps taken (restored on resume). */
    public long stepCount() {
        long h = acquire();
        try {
            return Native.trainerStepCount(h);
        } finally {
            release();
        }
    }

    /** Samples consumed (restored on resume), to position a data stream. */
    public long dataCursor() {
        long h = acquire();
        try {
            return Native.trainerDataCursor(h);
        } finally {
            release();
        }
    }

    /** Overrides the data cursor. */
    public void setDataCursor(long cursor) {
        long h = acquire();
        try {
            Native.trainerSetDataCursor(h, cursor);
        } finally {
            release();
        }
    }

    /** A snapshot of trainable parameter {@code name}. */
    public Tensor param(String name) {
        long h = acquire();
        try {
            return new Tensor(Native.trainerParam(h, Native.cstr(name)));
        } finally {
            release();
        }
    }
}
