package ai.libdeepseek;

/**
 * The engine's status codes, one constant for every {@code DS_STATUS_*} in
 * {@code include/deepseek.h} with the same number (a test checks the list against the header).
 * {@link #UNKNOWN} stands for a code this binding does not know (a newer library).
 */
public enum Status {
    /** Success (never carried by an exception). */
    OK(0),
    /** An argument has a value the function does not accept. */
    INVALID_ARGUMENT(1),
    /** A required pointer argument was NULL. */
    NULL_POINTER(2),
    /** A handle that is NULL, already freed, or of another kind. */
    INVALID_HANDLE(3),
    /** A dtype code that names no dtype, or a dtype the operation does not take. */
    INVALID_DTYPE(4),
    /** Shapes that do not fit together. */
    SHAPE_MISMATCH(5),
    /** An index, axis or range outside its bounds. */
    OUT_OF_RANGE(6),
    /** A size that overflows int64_t or size_t. */
    OVERFLOW(7),
    /** A caller buffer too small for the data. */
    BUFFER_TOO_SMALL(8),
    /** Tensors that disagree on dtype. */
    DTYPE_MISMATCH(9),
    /** An allocation failed. */
    OUT_OF_MEMORY(10),
    /** A device that does not exist or cannot be used. */
    DEVICE_UNAVAILABLE(11),
    /** A feature or combination the engine does not support. */
    UNSUPPORTED(12),
    /** A named thing that is not there. */
    NOT_FOUND(13),
    /** A library whose ABI version differs from the one this binding was built for. */
    ABI_MISMATCH(14),
    /** A bug inside the engine, including a caught panic; the process keeps working. */
    INTERNAL(15),
    /** A run was cancelled from another thread. */
    CANCELLED(16),
    /** A file or buffer that is truncated, corrupt or of a newer format version. */
    CORRUPT_DATA(17),
    /** A loss or gradient was NaN or infinite; the training step changed nothing. */
    NON_FINITE(18),
    /** A code this binding does not know; {@link DeepseekException#rawCode()} has the number. */
    UNKNOWN(-1);

    private final int value;

    Status(int value) {
        this.value = value;
    }

    /** The numeric code as the C header defines it ({@code -1} for {@link #UNKNOWN}). */
    public int value() {
        return value;
    }

    private static final Status[] BY_VALUE = new Status[NON_FINITE.value + 1];

    static {
        for (Status s : values()) {
            if (s != UNKNOWN) BY_VALUE[s.value] = s;
        }
    }

    /** The constant for a numeric code, {@link #UNKNOWN} when there is none. */
    public static Status of(int value) {
        return value >= 0 && value < BY_VALUE.length ? BY_VALUE[value] : UNKNOWN;
    }
}
