package dev.skipflow.model.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Turns a stream of byte pieces into text, holding back an incomplete UTF-8 sequence until its remaining
 * bytes arrive (byte-fallback tokens split a character over several tokens). Malformed bytes become U+FFFD.
 */
public final class Utf8Stream {

    private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPLACE)
            .onUnmappableCharacter(CodingErrorAction.REPLACE);
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

    /** Text that is complete after adding these bytes. */
    public String push(byte[] bytes) {
        pending.write(bytes, 0, bytes.length);
        ByteBuffer in = ByteBuffer.wrap(pending.toByteArray());
        CharBuffer out = CharBuffer.allocate(in.remaining() + 1);
        decoder.decode(in, out, false);
        pending.reset();
        pending.write(in.array(), in.position(), in.remaining());
        return out.flip().toString();
    }

    /** Whatever is still pending, with an incomplete tail replaced. */
    public String flush() {
        ByteBuffer in = ByteBuffer.wrap(pending.toByteArray());
        CharBuffer out = CharBuffer.allocate(in.remaining() + 2);
        decoder.decode(in, out, true);
        decoder.flush(out);
        decoder.reset();
        pending.reset();
        return out.flip().toString();
    }
}
