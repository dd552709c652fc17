package ai.libdeepseek;

/**
 * A typed attribute list (model, optimizer and schedule settings). The engine reads it when it
 * is passed and keeps no reference, so it may be closed right after use. Setters return
 * {@code this} for chaining; one thread at a time.
 */
public final class Attrs extends NativeHandle {
    /** An empty list. */
    public Attrs() {
        super(Native.attrsCreate(), Native::attrsFree);
    }

    /** Sets (or replaces) an integer attribute. */
    public Attrs setInt(String name, long value) {
        long h = acquire();
        try {
            Native.attrsSetInt(h, Native.cstr(name), value);
        } finally {
            release();
        }
        return this;
    }

    /** Sets (or replaces) a float attribute. */
    public Attrs setFloat(String name, double value) {
        long h = acquire();
        try {
            Native.attrsSetFloat(h, Native.cstr(name), value);
        } finally {
            release();
        }
        return this;
    }

    /** Sets (or replaces) a boolean attribute. */
    public Attrs setBool(String name, boolean value) {
        long h = acquire();
        try {
            Native.attrsSetBool(h, Native.cstr(name), value);
        } finally {
            release();
        }
        return this;
    }

    /** Sets (or replaces) an integer-list attribute. */
    public Attrs setInts(String name, long... values) {
        long h = acquire();
        try {
            Native.attrsSetInts(h, Native.cstr(name), values);
        } finally {
            release();
        }
        return this;
    }

    /** Sets (or replaces) a string attribute. */
    public Attrs setString(String name, String value) {
        long h = acquire();
        try {
            Native.attrsSetString(h, Native.cstr(name), Native.cstr(value));
        } finally {
            release();
        }
        return this;
    }
}
