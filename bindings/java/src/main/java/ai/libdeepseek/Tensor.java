package ai.libdeepseek;

import java.nio.ByteBuffer;

/**
 * A tensor owned by the engine (CPU). Data moves in and out in bulk, one JNI call and one copy
 * per transfer: from and to Java primitive arrays (the element type fixes the dtype) and direct
 * {@link ByteBuffer}s (raw bytes in the platform's byte order, {@code ByteOrder.nativeOrder()}).
 * Thread-safe: reads may run on many threads at once; {@link #close()} waits for them.
 */
public final class Tensor extends NativeHandle {
    Tensor(long handle) {
        super(handle, Native::tensorFree);
    }

    /** Wraps new handles; if wrapping fails midway, frees the handles not yet wrapped. */
    static Tensor[] wrap(long[] handles) {
        Tensor[] out = new Tensor[handles.length];
        int i = 0;
        try {
            for (; i < handles.length; i++) out[i] = new Tensor(handles[i]);
        } catch (RuntimeException | Error e) {
            for (int j = i + 1; j < handles.length; j++) Native.tensorFree(handles[j]);
            for (int j = 0; j < i; j++) out[j].close();
            throw e;
        }
        return out;
    }

    private static Tensor fromArray(Dtype dtype, Object data, long length, long[] shape) {
        return new Tensor(Native.tensorFromArray(dtype.code(), shape, data, length * dtype.size()));
    }

    /** An f32 tensor of {@code shape} holding a copy of {@code data} (row-major). */
    public static Tensor of(float[] data, long... shape) {
        return fromArray(Dtype.F32, data, data.length, shape);
    }

    /** An f64 tensor of {@code shape} holding a copy of {@code data}. */
    public static Tensor of(double[] data, long... shape) {
        return fromArray(Dtype.F64, data, data.length, shape);
    }

    /** An i64 tensor of {@code shape} holding a copy of {@code data}. */
    public static Tensor of(long[] data, long... shape) {
        return fromArray(Dtype.I64, data, data.length, shape);
    }

    /** An i32 tensor of {@code shape} holding a copy of {@code data}. */
    public static Tensor of(int[] data, long... shape) {
        return fromArray(Dtype.I32, data, data.length, shape);
    }

    /**
     * A tensor of any dtype from raw bytes ({@code raw.length} must be the element count times the
     * dtype size; the engine checks).
     */
    public static Tensor ofBytes(Dtype dtype, byte[] raw, long... shape) {
        return new Tensor(Native.tensorFromArray(dtype.code(), shape, raw, raw.length));
    }

    /**
     * A tensor holding a copy of the bytes between {@code buf}'s position and limit (its position
     * is not moved). {@code buf} must be direct.
     */
    public static Tensor fromBuffer(Dtype dtype, ByteBuffer buf, long... shape) {
        requireDirect(buf);
        return new Tensor(Native.tensorFromBuffer(dtype.code(), shape, buf, buf.position(), buf.remaining()));
    }

    private static void requireDirect(ByteBuffer buf) {
        if (!buf.isDirect()) {
            throw new IllegalArgumentException("a direct ByteBuffer is required (ByteBuffer.allocateDirect)");
        }
    }

    /** The dimensions. */
    public long[] shape() {
        long h = acquire();
        try {
            return Native.tensorShape(h);
        } finally {
            release();
        }
    }

    /** The element type. */
    public Dtype dtype() {
        long h = acquire();
        try {
            return Dtype.of(Native.tensorDtype(h));
        } finally {
            release();
        }
    }

    /** The element count. */
    public long numel() {
        long h = acquire();
        try {
            return Native.tensorNumel(h);
        } finally {
            release();
        }
    }

    private void copyTo(Dtype dtype, Object dst, long length) {
        long h = acquire();
        try {
            Native.tensorCopyToArray(h, dtype.code(), dst, length * dtype.size());
        } finally {
            release();
        }
    }

    /**
     * Copies the elements (row-major) into {@code dst}, which must hold at least {@link #numel()}
     * of them; the tensor must be f32 ({@link IllegalArgumentException} otherwise).
     */
    public void copyTo(float[] dst) {
        copyTo(Dtype.F32, dst, dst.length);
    }

    /** As {@link #copyTo(float[])} for an f64 tensor. */
    public void copyTo(double[] dst) {
        copyTo(Dtype.F64, dst, dst.length);
    }

    /** As {@link #copyTo(float[])} for an i64 tensor. */
    public void copyTo(long[] dst) {
        copyTo(Dtype.I64, dst, dst.length);
    }

    /** As {@link #copyTo(float[])} for an i32 tensor. */
    public void copyTo(int[] dst) {
        copyTo(Dtype.I32, dst, dst.length);
    }

    /**
     * Copies the raw elements into {@code dst} from its position (not moved); the bytes between
     * position and limit must cover the tensor. {@code dst} must be direct.
     */
    public void copyTo(ByteBuffer dst) {
        requireDirect(dst);
        long h = acquire();
        try {
            Native.tensorCopyToBuffer(h, dst, dst.position(), dst.remaining());
        } finally {
            release();
        }
    }

    private int arrayLength() {
        long n = numel();
        if (n > Integer.MAX_VALUE - 8) throw new IllegalStateException(n + " elements do not fit a Java array");
        return (int) n;
    }

    /** The elements of an f32 tensor in a new array. */
    public float[] toFloatArray() {
        float[] out = new float[arrayLength()];
        copyTo(out);
        return out;
    }

    /** The elements of an f64 tensor in a new array. */
    public double[] toDoubleArray() {
        double[] out = new double[arrayLength()];
        copyTo(out);
        return out;
    }

    /** The elements of an i64 tensor in a new array. */
    public long[] toLongArray() {
        long[] out = new long[arrayLength()];
        copyTo(out);
        return out;
    }

    /** The elements of an i32 tensor in a new array. */
    public int[] toIntArray() {
        int[] out = new int[arrayLength()];
        copyTo(out);
        return out;
    }

    /**
     * A zero-copy view of indices {@code start, start+step, ...} below {@code end} along
     * {@code dim} (the engine's {@code ds_tensor_slice} rules). Close it like any tensor.
     */
    public Tensor slice(long dim, long start, long end, long step) {
        long h = acquire();
        try {
            return new Tensor(Native.tensorSlice(h, dim, start, end, step));
        } finally {
            release();
        }
    }
}
