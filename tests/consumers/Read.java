// What ROME (Java) makes of one of Tributary's outputs, for tests/it/consumers.rs:
// `java -cp ROME_JARS Read.java FILE` prints {"ROME": [entries...]} as JSON, each entry in the
// same plain shape as the other readers'.

import com.rometools.rome.feed.synd.SyndEnclosure;
import com.rometools.rome.feed.synd.SyndEntry;
import com.rometools.rome.feed.synd.SyndFeed;
import com.rometools.rome.io.SyndFeedInput;
import com.rometools.rome.io.XmlReader;
import java.io.File;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;

public class Read {
    static String quote(String s) {
        if (s == null) {
            return "null";
        }
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }

    public static void main(String[] args) throws Exception {
        SyndFeed feed = new SyndFeedInput().build(new XmlReader(new File(args[0])));
        List<String> entries = new ArrayList<>();
        for (SyndEntry e : feed.getEntries()) {
            Date date = e.getPublishedDate() != null ? e.getPublishedDate() : e.getUpdatedDate();
            List<String> enclosures = new ArrayList<>();
            for (SyndEnclosure enclosure : e.getEnclosures()) {
                enclosures.add(quote(enclosure.getUrl()));
            }
            String author = e.getAuthors().isEmpty() ? e.getAuthor() : e.getAuthors().get(0).getName();
            if (author != null && author.isEmpty()) {
                author = null;
            }
            entries.add("{\"title\":" + quote(e.getTitle())
                + ",\"link\":" + quote(e.getLink())
                + ",\"date\":" + (date == null ? "null" : Long.toString(date.getTime() / 1000))
                + ",\"author\":" + quote(author)
                + ",\"enclosures\":[" + String.join(",", enclosures) + "]}");
        }
        System.out.println("{\"ROME\":[" + String.join(",", entries) + "]}");
    }
}
