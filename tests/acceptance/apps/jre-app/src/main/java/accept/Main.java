package accept;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32;

/** jre-app acceptance app: reads a bundled resource, counts words (java.util),
 *  prints SHA-256 (java.security), CRC32 (java.util.zip) and a zoned time (tzdb). */
public final class Main {
    public static void main(String[] args) throws Exception {
        String res = args.length > 0 ? args[0] : "/words.txt";
        byte[] bytes;
        try (InputStream in = Main.class.getResourceAsStream(res)) {
            if (in == null) { System.out.println("missing resource " + res); System.exit(3); return; }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            in.transferTo(out);
            bytes = out.toByteArray();
        }
        String text = new String(bytes, StandardCharsets.UTF_8);
        Map<String, Integer> counts = new TreeMap<>();
        for (String w : text.toLowerCase(Locale.ROOT).split("[^a-z]+")) {
            if (!w.isEmpty()) counts.merge(w, 1, Integer::sum);
        }
        StringBuilder sb = new StringBuilder();
        for (byte b : MessageDigest.getInstance("SHA-256").digest(bytes)) sb.append(String.format("%02x", b));
        CRC32 crc = new CRC32(); crc.update(bytes);
        System.out.println("resource " + res + " bytes=" + bytes.length + " words=" + counts.size());
        counts.entrySet().stream()
            .sorted((a, b) -> b.getValue() != a.getValue().intValue() ? b.getValue() - a.getValue() : a.getKey().compareTo(b.getKey()))
            .limit(5).forEach(e -> System.out.println("  " + e.getKey() + " " + e.getValue()));
        System.out.println("sha256 " + sb);
        System.out.printf(Locale.ROOT, "crc32 %08x%n", crc.getValue());
        System.out.println("paris " + DateTimeFormatter.ISO_OFFSET_DATE_TIME
            .format(Instant.ofEpochSecond(1700000000L).atZone(ZoneId.of("Europe/Paris"))));
        System.out.println("java.specification.version " + System.getProperty("java.specification.version"));
    }
}
