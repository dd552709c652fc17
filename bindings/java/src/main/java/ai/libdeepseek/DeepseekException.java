package ai.libdeepseek;

import java.nio.charset.StandardCharsets;

/**
 * A failed engine call: the status code and the engine's own message, unchanged. Unchecked,
 * because most failures are programming errors (a wrong feed) that callers do not recover from
 * locally. The JNI glue builds it inside the native call that failed, straight from
 * {@code ds_last_error()}, so the message always belongs to that call.
 */
public final class DeepseekException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int rawCode;
    private final String engineMessage;

    /** Called by the JNI glue: the message arrives as UTF-8 bytes (not JNI's modified UTF-8). */
    DeepseekException(int code, byte[] utf8Message) {
        this(code, new String(utf8Message, StandardCharsets.UTF_8));
    }

    private DeepseekException(int code, String engineMessage) {
        super("DS_STATUS_" + Status.of(code).name() + " (" + code + "): " + engineMessage);
        this.rawCode = code;
        this.engineMessage = engineMessage;
    }

    /** The status code. */
    public Status code() {
        return Status.of(rawCode);
    }

    /** The numeric status code, also for codes newer than this binding ({@link Status#UNKNOWN}). */
    public int rawCode() {
        return rawCode;
    }

    /** The engine's message exactly as {@code ds_last_error()} gave it. */
    public String engineMessage() {
        return engineMessage;
    }
}
