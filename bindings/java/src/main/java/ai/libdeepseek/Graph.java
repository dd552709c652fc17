package ai.libdeepseek;

import java.nio.file.Path;

/**
 * An immutable graph: built from a ready-made model, exported by a {@link Trainer}, or loaded
 * from a file. Executors and trainers made from it keep what they need, so it may be closed
 * right after. Thread-safe.
 */
public final class Graph extends NativeHandle {
    Graph(long handle) {
        super(handle, Native::graphFree);
    }

    /**
     * Builds the ready-made model {@code model} ({@code "dcn_v2"}, {@code "deepfm"},
     * {@code "logistic_regression"}, {@code "mlp_classifier"}) with {@code attrs} ({@code null} =
     * the defaults); see {@code ds_model_build}.
     */
    public static Graph build(String model, Attrs attrs) {
        long a = NativeHandle.acquireOrNull(attrs);
        try {
            return new Graph(Native.modelBuild(Native.cstr(model), a));
        } finally {
            NativeHandle.releaseOrNull(attrs);
        }
    }

    /** Loads a graph saved by {@link #save(Path)} (in any process). */
    public static Graph load(Path path) {
        return new Graph(Native.graphLoad(Native.cstr(path.toString())));
    }

    /** Saves the graph to {@code path} (written to a temporary name and renamed). */
    public void save(Path path) {
        long h = acquire();
        try {
            Native.graphSave(h, Native.cstr(path.toString()));
        } finally {
            release();
        }
    }

    /** The number of op nodes. */
    public long numOps() {
        long h = acquire();
        try {
            return Native.graphNumOps(h);
        } finally {
            release();
        }
    }
}
