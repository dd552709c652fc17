package ai.libdeepseek;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The native methods of the JNI glue ({@code bindings/java/native/deepseek_jni.c}), one per C
 * call, taking raw handles. Package-private: the public classes own the handles and make sure
 * every handle passed here is live. Loading this class loads the glue and checks the ABI once.
 */
final class Native {
    /** The {@code DS_ABI_VERSION} this binding was written for. */
    static final int ABI_VERSION = 1;

    static {
        String path = System.getProperty("deepseek.jni", "");
        if (path.isEmpty()) {
            System.loadLibrary("deepseek_jni");
        } else {
            System.load(path);
        }
        // The glue was compiled against a header; both it and this class must match the library.
        int header = headerAbiVersion();
        if (header != ABI_VERSION) {
            throw new IllegalStateException("the JNI glue was built against DS_ABI_VERSION " + header
                    + " but the Java classes expect " + ABI_VERSION + "; rebuild the glue");
        }
        checkAbi(ABI_VERSION);
    }

    private Native() {}

    /** A NUL-terminated UTF-8 copy of {@code s}, as the glue takes strings ({@code null} stays null). */
    static byte[] cstr(String s) {
        if (s == null) return null;
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        byte[] out = new byte[b.length + 1];
        System.arraycopy(b, 0, out, 0, b.length);
        return out;
    }

    /** The names back to back, each NUL-terminated: one array crosses JNI for a whole list. */
    static byte[] names(String[] names) {
        byte[][] parts = new byte[names.length][];
        int len = 0;
        for (int i = 0; i < names.length; i++) {
            parts[i] = names[i].getBytes(StandardCharsets.UTF_8);
            len += parts[i].length + 1;
        }
        byte[] out = new byte[len];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length + 1;
        }
        return out;
    }

    // library
    static native int headerAbiVersion();
    static native void checkAbi(int expected);
    static native int abiVersion();
    static native byte[] versionString();
    static native long liveObjects();
    static native void setNumThreads(int n);
    static native int getNumThreads();

    // tensors
    static native long tensorFromArray(int dtype, long[] dims, Object array, long nbytes);
    static native long tensorFromBuffer(int dtype, long[] dims, ByteBuffer buf, long offset, long nbytes);
    static native void tensorCopyToArray(long t, int dtype, Object array, long nbytes);
    static native void tensorCopyToBuffer(long t, ByteBuffer buf, long offset, long nbytes);
    static native long[] tensorShape(long t);
    static native int tensorDtype(long t);
    static native long tensorNumel(long t);
    static native long tensorSlice(long t, long dim, long start, long end, long step);
    static native void tensorFree(long t);

    // attributes
    static native long attrsCreate();
    static native void attrsFree(long a);
    static native void attrsSetInt(long a, byte[] name, long v);
    static native void attrsSetFloat(long a, byte[] name, double v);
    static native void attrsSetBool(long a, byte[] name, boolean v);
    static native void attrsSetInts(long a, byte[] name, long[] v);
    static native void attrsSetString(long a, byte[] name, byte[] v);

    // graphs
    static native long modelBuild(byte[] name, long attrs);
    static native long graphLoad(byte[] path);
    static native void graphSave(long g, byte[] path);
    static native long graphNumOps(long g);
    static native void graphFree(long g);

    // executors
    static native long execOptionsNew();
    static native void execOptionsSetOptLevel(long o, int level);
    static native void execOptionsSetInterOpThreads(long o, int n);
    static native void execOptionsFree(long o);
    static native long executorNew(long graph, long options);
    static native void executorFree(long ex);
    static native long[] executorRun(long ex, byte[] feedNames, int nFeeds, long[] feeds,
                                     byte[] fetchNames, int nFetches, long cancel);

    // cancel tokens
    static native long cancelTokenNew();
    static native void cancelTokenCancel(long t);
    static native void cancelTokenReset(long t);
    static native boolean cancelTokenIsCancelled(long t);
    static native void cancelTokenFree(long t);

    // trainer options
    static native long trainerOptionsNew();
    static native void trainerOptionsFree(long o);
    static native void trainerOptionsSetOptimizer(long o, byte[] name, long attrs);
    static native void trainerOptionsSetSparseOptimizer(long o, byte[] name, long attrs);
    static native void trainerOptionsSetSchedule(long o, byte[] name, long attrs);
    static native void trainerOptionsSetLr(long o, double lr);
    static native void trainerOptionsSetSparseLr(long o, double lr);
    static native void trainerOptionsSetClipNorm(long o, double maxNorm);
    static native void trainerOptionsSetCheckpoints(long o, byte[] dir, long every, long keep);
    static native void trainerOptionsSetExec(long o, long exec);
    static native void trainerOptionsSetSeed(long o, long seed);

    // trainers
    static native long trainerNew(long graph, byte[] loss, long options);
    static native void trainerFree(long t);
    static native double trainerStep(long t, byte[] names, int n, long[] feeds);
    static native long[] trainerEvaluate(long t, byte[] feedNames, int nFeeds, long[] feeds,
                                         byte[] fetchNames, int nFetches);
    static native long trainerExport(long t, byte[] outputs, int n);
    static native void trainerSaveCheckpoint(long t);
    static native long trainerStepCount(long t);
    static native long trainerDataCursor(long t);
    static native void trainerSetDataCursor(long t, long cursor);
    static native long trainerParam(long t, byte[] name);

    // CTR generator
    static native long ctrGeneratorNew(long[] vocabSizes, double zipf, long seed);
    static native long[] ctrGeneratorNext(long g, long n, boolean withProbs);
    static native long ctrGeneratorCursor(long g);
    static native void ctrGeneratorSeek(long g, long cursor);
    static native void ctrGeneratorFree(long g);

    // metrics
    static native double metricAuc(long scores, long labels);
    static native double metricLogLoss(long probs, long labels);
}
