package ai.libdeepseek;

import java.nio.file.Path;

/**
 * How a {@link Trainer} trains (defaults: Adam, learning rate 1e-3, constant schedule, no
 * clipping, no checkpoints, seed 0). A trainer copies what it needs, so the options may be closed
 * right after. Setters return {@code this}; one thread at a time.
 */
public final class TrainerOptions extends NativeHandle {
    /** Options with the defaults. */
    public TrainerOptions() {
        super(Native.trainerOptionsNew(), Native::trainerOptionsFree);
    }

    private interface NamedSetter {
        void set(long options, byte[] name, long attrs);
    }

    private TrainerOptions setNamed(NamedSetter setter, String name, Attrs attrs) {
        long h = acquire();
        try {
            long a = NativeHandle.acquireOrNull(attrs);
            try {
                setter.set(h, Native.cstr(name), a);
            } finally {
                NativeHandle.releaseOrNull(attrs);
            }
        } finally {
            release();
        }
        return this;
    }

    /** The optimizer for dense gradients by name ({@code sgd}, {@code adam}, ...), {@code attrs} may be null. */
    public TrainerOptions optimizer(String name, Attrs attrs) {
        return setNamed(Native::trainerOptionsSetOptimizer, name, attrs);
    }

    /**
     * The optimizer for embedding tables ({@code rowwise_adagrad}, {@code lazy_adam}, ...);
     * {@code null} name = use the dense optimizer for tables too.
     */
    public TrainerOptions sparseOptimizer(String name, Attrs attrs) {
        return setNamed(Native::trainerOptionsSetSparseOptimizer, name, attrs);
    }

    /** The learning-rate schedule by name ({@code constant}, {@code step}, {@code cosine}, ...). */
    public TrainerOptions schedule(String name, Attrs attrs) {
        return setNamed(Native::trainerOptionsSetSchedule, name, attrs);
    }

    /** The base learning rate. */
    public TrainerOptions lr(double lr) {
        long h = acquire();
        try {
            Native.trainerOptionsSetLr(h, lr);
        } finally {
            release();
        }
        return this;
    }

    /** The sparse optimizer's base learning rate (negative = the dense rate). */
    public TrainerOptions sparseLr(double lr) {
        long h = acquire();
        try {
            Native.trainerOptionsSetSparseLr(h, lr);
        } finally {
            release();
        }
        return this;
    }

    /** Clips gradients to a global L2 norm ({@code 0} = off). */
    public TrainerOptions clipNorm(double maxNorm) {
        long h = acquire();
        try {
            Native.trainerOptionsSetClipNorm(h, maxNorm);
        } finally {
            release();
        }
        return this;
    }

    /**
     * Checkpoints in {@code dir} ({@code null} = none) every {@code every} steps (0 = only
     * {@link Trainer#saveCheckpoint()}), keeping {@code keep}. A trainer made on a directory with
     * checkpoints resumes from the newest valid one.
     */
    public TrainerOptions checkpoints(Path dir, long every, long keep) {
        long h = acquire();
        try {
            Native.trainerOptionsSetCheckpoints(h, dir == null ? null : Native.cstr(dir.toString()), every, keep);
        } finally {
            release();
        }
        return this;
    }

    /** How the trainer's executors compile (a copy is taken; {@code null} = defaults). */
    public TrainerOptions exec(ExecOptions exec) {
        long h = acquire();
        try {
            long e = NativeHandle.acquireOrNull(exec);
            try {
                Native.trainerOptionsSetExec(h, e);
            } finally {
                NativeHandle.releaseOrNull(exec);
            }
        } finally {
            release();
        }
        return this;
    }

    /** The seed of the trainer's random generator (read as unsigned 64-bit). */
    public TrainerOptions seed(long seed) {
        long h = acquire();
        try {
            Native.trainerOptionsSetSeed(h, seed);
        } finally {
            release();
        }
        return this;
    }
}
