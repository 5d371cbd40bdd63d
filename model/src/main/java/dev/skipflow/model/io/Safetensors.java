package dev.skipflow.model.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.skipflow.model.io.ModelFormatException;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The safetensors container: an 8-byte little-endian header length, a JSON header naming each tensor's
 * dtype, shape and byte range, then the raw data. Only the float dtypes a decoder needs are read.
 */
public final class Safetensors {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_HEADER = 100L * 1024 * 1024;

    /** One tensor's location in a file. */
    public record Entry(Path file, String name, String dtype, long[] shape, long begin, long end) {
        public long elements() {
            long n = 1;
            for (long s : shape) {
                n *= s;
            }
            return n;
        }
    }

    private Safetensors() {}

    /** Reads the header of one file and checks every tensor's byte range against the file. */
    public static Map<String, Entry> index(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw new ModelFormatException(file, "file has " + size + " bytes, too short for a safetensors header");
            }
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(lenBuf, 0);
            long headerLen = lenBuf.flip().getLong();
            if (headerLen <= 0 || headerLen > MAX_HEADER || 8 + headerLen > size) {
                throw new ModelFormatException(file, "header length " + headerLen + " does not fit a file of "
                        + size + " bytes");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLen);
            ch.read(header, 8);
            JsonNode root = JSON.readTree(new String(header.array(), StandardCharsets.UTF_8));
            long dataStart = 8 + headerLen;
            long dataBytes = size - dataStart;
            Map<String, Entry> out = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (e.getKey().equals("__metadata__")) {
                    continue;
                }
                JsonNode t = e.getValue();
                String dtype = t.path("dtype").asText();
                JsonNode shapeNode = t.path("shape");
                long[] shape = new long[shapeNode.size()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = shapeNode.get(i).asLong();
                }
                long begin = t.path("data_offsets").path(0).asLong(-1);
                long end = t.path("data_offsets").path(1).asLong(-1);
                Entry entry = new Entry(file, e.getKey(), dtype, shape, dataStart + begin, dataStart + end);
                if (begin < 0 || end < begin || end > dataBytes) {
                    throw new ModelFormatException(file, "tensor " + e.getKey() + " claims bytes " + begin + ".." + end
                            + " of the data section, which has " + dataBytes + " bytes (truncated?)");
                }
                long need = entry.elements() * bytesPer(file, e.getKey(), dtype);
                if (need != end - begin) {
                    throw new ModelFormatException(file, "tensor " + e.getKey() + " of shape "
                            + java.util.Arrays.toString(shape) + " and dtype " + dtype + " needs " + need
                            + " bytes, header gives " + (end - begin));
                }
                out.put(e.getKey(), entry);
            }
            return out;
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read safetensors: " + e.getMessage(), e);
        }
    }

    private static int bytesPer(Path file, String name, String dtype) {
        return switch (dtype) {
            case "F32" -> 4;
            case "F16", "BF16" -> 2;
            default -> throw new ModelFormatException(file, "tensor " + name + " has dtype " + dtype
                    + "; supported: F32, F16, BF16");
        };
    }

    /** Reads a tensor as fp32, converting fp16 and bf16. */
    public static float[] readFloats(Entry e) {
        try (FileChannel ch = FileChannel.open(e.file(), StandardOpenOption.READ)) {
            ByteBuffer buf = ch.map(FileChannel.MapMode.READ_ONLY, e.begin(), e.end() - e.begin())
                    .order(ByteOrder.LITTLE_ENDIAN);
            float[] out = new float[Math.toIntExact(e.elements())];
            switch (e.dtype()) {
                case "F32" -> buf.asFloatBuffer().get(out);
                case "F16" -> {
                    for (int i = 0; i < out.length; i++) {
                        out[i] = Half.toFloat(buf.getShort());
                    }
                }
                case "BF16" -> {
                    for (int i = 0; i < out.length; i++) {
                        out[i] = Float.intBitsToFloat((buf.getShort() & 0xffff) << 16);
                    }
                }
                default -> throw new ModelFormatException(e.file(), "unsupported dtype " + e.dtype());
            }
            return out;
        } catch (IOException ex) {
            throw new ModelFormatException(e.file(), "cannot read tensor " + e.name() + ": " + ex.getMessage(), ex);
        }
    }

    /** A tensor to write: fp32 values stored as {@code dtype} (F32, F16 or BF16). */
    public record Tensor(String name, long[] shape, float[] values) {}

    /** Writes tensors to one file in the given dtype, in the order given. */
    public static void write(Path file, Iterable<Tensor> tensors, String dtype) throws IOException {
        int width = switch (dtype) {
            case "F32" -> 4;
            case "F16", "BF16" -> 2;
            default -> throw new IllegalArgumentException("dtype " + dtype);
        };
        ObjectNode header = JSON.createObjectNode();
        long offset = 0;
        for (Tensor t : tensors) {
            ObjectNode n = header.putObject(t.name());
            n.put("dtype", dtype);
            var shape = n.putArray("shape");
            for (long s : t.shape()) {
                shape.add(s);
            }
            long bytes = (long) t.values().length * width;
            n.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] headerBytes = JSON.writeValueAsBytes(header);
        try (OutputStream out = Files.newOutputStream(file)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(headerBytes.length);
            out.write(len.array());
            out.write(headerBytes);
            for (Tensor t : tensors) {
                ByteBuffer b = ByteBuffer.allocate(t.values().length * width).order(ByteOrder.LITTLE_ENDIAN);
                for (float v : t.values()) {
                    switch (dtype) {
                        case "F32" -> b.putFloat(v);
                        case "F16" -> b.putShort(Half.fromFloat(v));
                        default -> b.putShort((short) (Float.floatToIntBits(v) >>> 16));
                    }
                }
                out.write(b.array());
            }
        }
    }

    /** IEEE 754 half precision; Java 17 has no Float.float16ToFloat yet. */
    static final class Half {
        private Half() {}

        static float toFloat(short h) {
            int bits = h & 0xffff;
            int sign = (bits & 0x8000) << 16;
            int exp = (bits >>> 10) & 0x1f;
            int mant = bits & 0x3ff;
            if (exp == 0x1f) {
                return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
            }
            if (exp == 0) {
                if (mant == 0) {
                    return Float.intBitsToFloat(sign);
                }
                float v = mant / 1024f / 16384f; // subnormal: mant * 2^-24
                return sign == 0 ? v : -v;
            }
            return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
        }

        static short fromFloat(float f) {
            int bits = Float.floatToIntBits(f);
            int sign = (bits >>> 16) & 0x8000;
            int exp = ((bits >>> 23) & 0xff) - 127 + 15;
            int mant = bits & 0x7fffff;
            if (((bits >>> 23) & 0xff) == 0xff) {
                return (short) (sign | 0x7c00 | (mant != 0 ? 0x200 : 0));
            }
            if (exp >= 0x1f) {
                return (short) (sign | 0x7c00);
            }
            if (exp <= 0) {
                if (exp < -10) {
                    return (short) sign;
                }
                mant |= 0x800000;
                int shift = 14 - exp;
                int half = mant >>> shift;
                if (((mant >>> (shift - 1)) & 1) != 0) {
                    half++;
                }
                return (short) (sign | half);
            }
            int half = sign | (exp << 10) | (mant >>> 13);
            if ((mant & 0x1000) != 0) {
                half++; // round half up; enough for test fixtures and exports
            }
            return (short) half;
        }
    }
}
