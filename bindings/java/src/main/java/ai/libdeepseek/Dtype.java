package ai.libdeepseek;

/** Element types, with the {@code DS_DTYPE_*} codes of the C header and their byte sizes. */
public enum Dtype {
    /** 32-bit float ({@code float[]}). */
    F32(1, 4),
    /** 64-bit float ({@code double[]}). */
    F64(2, 8),
    /** IEEE half float (raw bytes only). */
    F16(3, 2),
    /** bfloat16 (raw bytes only). */
    BF16(4, 2),
    /** 32-bit signed integer ({@code int[]}). */
    I32(5, 4),
    /** 64-bit signed integer ({@code long[]}). */
    I64(6, 8),
    /** 8-bit unsigned integer ({@code byte[]}, read unsigned). */
    U8(7, 1),
    /** Boolean stored as one byte, 0 or 1. */
    BOOL(8, 1);

    private final int code;
    private final int size;

    Dtype(int code, int size) {
        this.code = code;
        this.size = size;
    }

    /** The {@code DS_DTYPE_*} code. */
    public int code() {
        return code;
    }

    /** Bytes per element. */
    public int size() {
        return size;
    }

    /** The dtype of a code the engine returned. */
    static Dtype of(int code) {
        for (Dtype d : values()) {
            if (d.code == code) return d;
        }
        throw new IllegalStateException("unknown dtype code " + code);
    }
}
