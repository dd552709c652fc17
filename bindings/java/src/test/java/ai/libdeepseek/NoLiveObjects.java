package ai.libdeepseek;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * After each test class: every wrapper is closed and the engine holds no live handle. A test
 * that drops objects on purpose waits for the Cleaner itself before it ends.
 */
public final class NoLiveObjects implements AfterAllCallback {
    @Override
    public void afterAll(ExtensionContext context) {
        assertEquals(0, Deepseek.openHandles(), "Java wrappers still open after " + context.getDisplayName());
        assertEquals(0, Deepseek.liveObjects(), "engine handles still live after " + context.getDisplayName());
    }
}
