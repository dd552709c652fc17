package ai.libdeepseek;

/**
 * Stops runs from another thread: runs given this token end with {@link Status#CANCELLED} once
 * {@link #cancel()} is called (the executor stays usable). Thread-safe.
 */
public final class CancelToken extends NativeHandle {
    /** A token, not cancelled. */
    public CancelToken() {
        super(Native.cancelTokenNew(), Native::cancelTokenFree);
    }

    /** Asks every run using the token to stop; runs started afterwards stop at once until {@link #reset()}. */
    public void cancel() {
        long h = acquire();
        try {
            Native.cancelTokenCancel(h);
        } finally {
            release();
        }
    }

    /** Clears the flag so the token can serve new runs. */
    public void reset() {
        long h = acquire();
        try {
            Native.cancelTokenReset(h);
        } finally {
            release();
        }
    }

    /** Whether the token is cancelled. */
    public boolean isCancelled() {
        long h = acquire();
        try {
            return Native.cancelTokenIsCancelled(h);
        } finally {
            release();
        }
    }
}
