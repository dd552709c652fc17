package ai.libdeepseek;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Data in and out of tensors: every Java array type and direct buffers, bit for bit. */
@ExtendWith(NoLiveObjects.class)
class TensorTest {
    @Test
    void floatArrayRoundTripKeepsEveryBit() {
        // NaN payloads, -0.0, subnormals and infinities must survive the copies unchanged.
        float[] data = {1.5f, -0.0f, Float.intBitsToFloat(0x7fc01234), Float.MIN_VALUE,
                Float.POSITIVE_INFINITY, -3.25f};
        try (Tensor t = Tensor.of(data, 2, 3)) {
            assertEquals(Dtype.F32, t.dtype());
            assertArrayEquals(new long[] {2, 3}, t.shape());
            assertEquals(6, t.numel());
            float[] back = t.toFloatArray();
            for (int i = 0; i < data.length; i++) {
                assertEquals(Float.floatToRawIntBits(data[i]), Float.floatToRawIntBits(back[i]), "element " + i);
            }
        }
    }

    @Test
    void doubleLongAndIntArraysRoundTrip() {
        double[] d = {Math.PI, -1e300, Double.MIN_VALUE, 0.0};
        long[] l = {Long.MIN_VALUE, -1, 0, Long.MAX_VALUE};
        int[] i = {Integer.MIN_VALUE, -7, 0, Integer.MAX_VALUE};
        try (Tensor td = Tensor.of(d, 4); Tensor tl = Tensor.of(l, 2, 2); Tensor ti = Tensor.of(i, 4, 1)) {
            assertEquals(Dtype.F64, td.dtype());
            assertEquals(Dtype.I64, tl.dtype());
            assertEquals(Dtype.I32, ti.dtype());
            assertArrayEquals(d, td.toDoubleArray());
            assertArrayEquals(l, tl.toLongArray());
            assertArrayEquals(i, ti.toIntArray());
            assertArrayEquals(new long[] {4, 1}, ti.shape());
        }
    }

    @Test
    void scalarHasNoDimensions() {
        try (Tensor t = Tensor.of(new float[] {42f})) {
            assertArrayEquals(new long[0], t.shape());
            assertArrayEquals(new float[] {42f}, t.toFloatArray());
        }
    }

    @Test
    void rawBytesRoundTrip() {
        byte[] raw = {0, 1, (byte) 200, (byte) 255};
        try (Tensor t = Tensor.ofBytes(Dtype.U8, raw, 4)) {
            assertEquals(Dtype.U8, t.dtype());
            ByteBuffer out = ByteBuffer.allocateDirect(4);
            t.copyTo(out);
            byte[] back = new byte[4];
            out.get(back);
            assertArrayEquals(raw, back);
        }
    }

    @Test
    void directBufferRoundTripFromItsPosition() {
        ByteBuffer in = ByteBuffer.allocateDirect(8 + 6 * 4).order(ByteOrder.nativeOrder());
        in.putLong(-1L); // 8 bytes before the position: must not be read
        for (int k = 0; k < 6; k++) in.putFloat(k * 0.5f);
        in.position(8);
        try (Tensor t = Tensor.fromBuffer(Dtype.F32, in, 3, 2)) {
            assertEquals(8, in.position(), "the position is not moved");
            assertArrayEquals(new float[] {0f, 0.5f, 1f, 1.5f, 2f, 2.5f}, t.toFloatArray());
            ByteBuffer out = ByteBuffer.allocateDirect(4 + 6 * 4).order(ByteOrder.nativeOrder());
            out.putInt(0x5a5a5a5a).position(4);
            t.copyTo(out);
            assertEquals(0x5a5a5a5a, out.getInt(0), "bytes before the position untouched");
            for (int k = 0; k < 6; k++) assertEquals(k * 0.5f, out.getFloat(4 + 4 * k));
        }
    }

    @Test
    void heapBufferIsRefused() {
        ByteBuffer heap = ByteBuffer.allocate(16);
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> Tensor.fromBuffer(Dtype.F32, heap, 4));
        assertTrue(e.getMessage().contains("direct"), e.getMessage());
    }

    @Test
    void dataThatDoesNotFitTheShapeIsTheEnginesError() {
        DeepseekException e = assertThrows(DeepseekException.class, () -> Tensor.of(new float[5], 2, 3));
        assertTrue(e.engineMessage().contains("24") || e.engineMessage().contains("20"), e.getMessage());
        assertTrue(e.getMessage().startsWith("DS_STATUS_" + e.code().name()), e.getMessage());
    }

    @Test
    void copyIntoAnArrayOfAnotherTypeIsRefused() {
        try (Tensor t = Tensor.of(new float[] {1, 2}, 2)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.copyTo(new long[2]));
            assertTrue(e.getMessage().contains("f32") && e.getMessage().contains("i64"), e.getMessage());
        }
    }

    @Test
    void copyIntoATooSmallArrayIsTheEnginesError() {
        try (Tensor t = Tensor.of(new float[] {1, 2, 3}, 3)) {
            float[] small = {7f, 7f};
            DeepseekException e = assertThrows(DeepseekException.class, () -> t.copyTo(small));
            assertEquals(Status.BUFFER_TOO_SMALL, e.code());
            assertArrayEquals(new float[] {7f, 7f}, small, "nothing written");
        }
    }

    @Test
    void sliceIsAViewThatOutlivesItsSource() {
        Tensor row;
        try (Tensor t = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 3, 2)) {
            row = t.slice(0, 1, 2, 1);
        }
        try (row) {
            assertArrayEquals(new long[] {1, 2}, row.shape());
            assertArrayEquals(new float[] {3, 4}, row.toFloatArray());
        }
    }

    @Test
    void bulkCopyOfAMillionFloats() {
        float[] big = new float[1 << 20];
        for (int k = 0; k < big.length; k++) big[k] = k * 0.25f;
        try (Tensor t = Tensor.of(big, 1024, 1024)) {
            assertArrayEquals(big, t.toFloatArray());
        }
    }
}
