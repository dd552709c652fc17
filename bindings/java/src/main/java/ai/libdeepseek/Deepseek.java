package ai.libdeepseek;

import java.nio.charset.StandardCharsets;

/** Library-wide information and settings. */
public final class Deepseek {
    private Deepseek() {}

    /** The {@code DS_ABI_VERSION} this binding was written for (checked against the library at load). */
    public static final int ABI_VERSION = Native.ABI_VERSION;

    /** The loaded library's version string, e.g. {@code "0.1.0"}. */
    public static String version() {
        return new String(Native.versionString(), StandardCharsets.UTF_8);
    }

    /** The loaded library's ABI version. */
    public static int abiVersion() {
        return Native.abiVersion();
    }

    /** The engine's count of live handles of every kind: 0 once everything is closed. */
    public static long liveObjects() {
        return Native.liveObjects();
    }

    /** Handles the {@link java.lang.ref.Cleaner} freed because nobody closed them (a leak counter). */
    public static long leakedHandles() {
        return NativeHandle.leaked();
    }

    /** Wrappers of this binding not yet freed (closed or cleaned). */
    public static long openHandles() {
        return NativeHandle.live();
    }

    /** Sets the size of the engine's thread pool (1 = run on the calling thread). */
    public static void setNumThreads(int n) {
        Native.setNumThreads(n);
    }

    /** The size of the engine's thread pool. */
    public static int numThreads() {
        return Native.getNumThreads();
    }
}
