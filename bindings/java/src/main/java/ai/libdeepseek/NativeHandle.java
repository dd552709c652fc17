package ai.libdeepseek;

import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;

/**
 * Owns one engine handle. In C, freeing a handle while another thread is inside a call on it is
 * undefined; this class rules that out. Every call brackets its native work with
 * {@link #acquire()} / {@link #release()}, which count it as in flight; {@link #close()} marks the
 * handle closed (new calls then throw {@link IllegalStateException}), waits for the calls in
 * flight to return, and frees it once. A {@link Cleaner} frees handles that were never closed and
 * counts them in {@link Deepseek#leakedHandles()}: it is a safety net, not the way to free.
 */
abstract class NativeHandle implements AutoCloseable {
    private static final Cleaner CLEANER = Cleaner.create();
    private static final AtomicLong LEAKED = new AtomicLong();
    private static final AtomicLong LIVE = new AtomicLong();
    private static volatile boolean leakLogged;

    /** Set in {@link #state} once closing has begun; the low bits count calls in flight. */
    private static final long CLOSED = Long.MIN_VALUE;

    private final long handle;
    private final AtomicLong state = new AtomicLong();
    private final Reaper reaper;
    private final Cleaner.Cleanable cleanable;
    private volatile boolean freed;

    /** Frees a handle once: explicitly from close(), or from the Cleaner as a leak. */
    private static final class Reaper implements Runnable {
        // No reference to the owner, or the owner could never become unreachable.
        private final long handle;
        private final LongConsumer free;
        private final String kind;
        private volatile boolean explicit;

        Reaper(long handle, LongConsumer free, String kind) {
            this.handle = handle;
            this.free = free;
            this.kind = kind;
        }

        @Override
        public void run() {
            if (!explicit) {
                LEAKED.incrementAndGet();
                if (!leakLogged) {
                    leakLogged = true;
                    System.getLogger("ai.libdeepseek").log(System.Logger.Level.WARNING,
                            "a " + kind + " was not closed; the Cleaner freed it (further leaks are only counted)");
                }
            }
            free.accept(handle);
            LIVE.decrementAndGet();
        }
    }

    /**
     * Takes ownership of a live handle, just created by a native call that succeeded: the
     * Cleaner is registered only now, so it can never free a half-built object.
     */
    NativeHandle(long handle, LongConsumer free) {
        if (handle == 0) throw new IllegalStateException("null handle from the engine");
        this.handle = handle;
        this.reaper = new Reaper(handle, free, getClass().getSimpleName());
        Cleaner.Cleanable c;
        try {
            c = CLEANER.register(this, reaper);
        } catch (RuntimeException | Error e) {
            free.accept(handle);
            throw e;
        }
        this.cleanable = c;
        LIVE.incrementAndGet();
    }

    /** Number of wrappers freed by the Cleaner because nobody closed them. */
    static long leaked() {
        return LEAKED.get();
    }

    /** Number of wrappers not yet freed. */
    static long live() {
        return LIVE.get();
    }

    /**
     * Registers a call in flight and returns the handle to pass to it; throws
     * {@link IllegalStateException} once closing has begun. Pair every call with {@link #release()}
     * in a finally block.
     */
    final long acquire() {
        for (;;) {
            long s = state.get();
            if (s < 0) {
                throw new IllegalStateException(getClass().getSimpleName() + " is closed");
            }
            if (state.compareAndSet(s, s + 1)) return handle;
        }
    }

    /** Ends a call registered by {@link #acquire()}; wakes a waiting close() after the last one. */
    final void release() {
        if (state.decrementAndGet() == CLOSED) {
            synchronized (state) {
                state.notifyAll();
            }
        }
        // Keeps this object reachable until the native call is over: otherwise the JIT may
        // consider it dead mid-call and the Cleaner could free the handle under the engine.
        Reference.reachabilityFence(this);
    }

    /** Calls in flight right now (for tests). */
    final long inFlight() {
        return state.get() & Long.MAX_VALUE;
    }

    /** {@link #acquire()} of an optional argument: 0 (the C NULL) for {@code null}. */
    static long acquireOrNull(NativeHandle h) {
        return h == null ? 0 : h.acquire();
    }

    /** {@link #release()} of an optional argument. */
    static void releaseOrNull(NativeHandle h) {
        if (h != null) h.release();
    }

    /**
     * Acquires every handle of {@code hs} (all or none: on failure those already acquired are
     * released before the exception propagates).
     */
    static long[] acquireAll(NativeHandle[] hs) {
        long[] out = new long[hs.length];
        int i = 0;
        try {
            for (; i < hs.length; i++) out[i] = hs[i].acquire();
        } catch (RuntimeException e) {
            releaseAll(hs, i);
            throw e;
        }
        return out;
    }

    /** Releases the first {@code n} handles of {@code hs}. */
    static void releaseAll(NativeHandle[] hs, int n) {
        for (int i = 0; i < n; i++) hs[i].release();
    }

    /** Whether close() has begun. */
    public final boolean isClosed() {
        return state.get() < 0;
    }

    /**
     * Frees the handle after the calls in flight on it have returned; later calls throw
     * {@link IllegalStateException}. Idempotent and thread-safe: every caller returns once the
     * handle is freed. Objects made from this one (outputs, executors of a graph) stay valid: the
     * engine reference-counts parents.
     */
    @Override
    public final void close() {
        long s;
        do {
            s = state.get();
            if (s < 0) {
                awaitFreed();
                return;
            }
        } while (!state.compareAndSet(s, s | CLOSED));
        boolean interrupted = false;
        synchronized (state) {
            while (state.get() != CLOSED) {
                try {
                    state.wait();
                } catch (InterruptedException e) {
                    interrupted = true; // the free must still happen; re-assert below
                }
            }
        }
        reaper.explicit = true;
        cleanable.clean();
        synchronized (state) {
            freed = true;
            state.notifyAll();
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    private void awaitFreed() {
        boolean interrupted = false;
        synchronized (state) {
            while (!freed) {
                try {
                    state.wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }
}
