package corpora

import (
	"html"
	"strings"
)

// StripHTML returns the title (the text of the first <title> element) and
// the visible text of an HTML document: tags, comments, doctypes and
// processing instructions are removed, the contents of <script>, <style>,
// <template>, <noscript> and <title> are left out of the text,
// character references (&amp;, &#233;, &eacute;) are decoded, block-level
// tags and <br> separate words, and runs of white space become one space.
//
// It is a tolerant scanner, not a full HTML5 parser: attribute values may
// hold '>' when quoted; a '<' that does not start a tag, or starts one never
// closed by '>', is text; an unclosed comment or raw-text element runs to
// the end of the input (as in browsers). All Unicode white space, no-break
// space included, counts as space. Cost: linear in len(s) but for tags
// with unbalanced quotes.
func StripHTML(s string) (title, text string) {
	var out strings.Builder
	out.Grow(len(s) / 2)
	var titleText string
	haveTitle := false
	i := 0
	emit := func(t string) { out.WriteString(html.UnescapeString(t)) }
	for i < len(s) {
		lt := strings.IndexByte(s[i:], '<')
		if lt < 0 {
			emit(s[i:])
			break
		}
		emit(s[i : i+lt])
		i += lt
		rest := s[i:]
		switch {
		case strings.HasPrefix(rest, "<!--"):
			end := strings.Index(rest[4:], "-->")
			if end < 0 {
				i = len(s)
			} else {
				i += 4 + end + 3
			}
			continue
		case strings.HasPrefix(rest, "<!") || strings.HasPrefix(rest, "<?"):
			end := strings.IndexByte(rest, '>')
			if end < 0 {
				i = len(s)
			} else {
				i += end + 1
			}
			continue
		}
		closing := strings.HasPrefix(rest, "</")
		nameStart := 1
		if closing {
			nameStart = 2
		}
		j := nameStart
		for j < len(rest) && isTagNameByte(rest[j]) {
			j++
		}
		if j == nameStart || !isASCIILetter(rest[nameStart]) {
			// Not a tag: a literal '<'.
			out.WriteByte('<')
			i++
			continue
		}
		name := strings.ToLower(rest[nameStart:j])
		end := tagEnd(rest, j)
		if end < 0 { // an unbalanced quote: end at the first '>'
			if k := strings.IndexByte(rest[j:], '>'); k >= 0 {
				end = j + k
			}
		}
		if end < 0 {
			// No '>' anywhere after: no tag can end, the rest is text.
			emit(rest)
			break
		}
		i += end + 1
		if blockTags[name] {
			out.WriteByte(' ')
		}
		if closing {
			continue
		}
		if rawTextTags[name] || name == "title" {
			body, after := rawTextUntil(s[i:], name)
			if name == "title" && !haveTitle {
				titleText, haveTitle = html.UnescapeString(body), true
			}
			i += after
			out.WriteByte(' ')
		}
	}
	return collapseSpace(titleText), collapseSpace(out.String())
}

// tagEnd returns the index of the '>' that ends the tag whose name ends at
// j, skipping quoted attribute values; -1 when there is none.
func tagEnd(s string, j int) int {
	var quote byte
	for ; j < len(s); j++ {
		c := s[j]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return j
		}
	}
	return -1
}

// rawTextUntil returns the text before "</name" (ASCII case ignored) and
// the index just past that end tag's '>', or all of s when there is no end
// tag.
func rawTextUntil(s, name string) (body string, after int) {
	from := 0
	for {
		k := strings.Index(s[from:], "</")
		if k < 0 {
			return s, len(s)
		}
		k += from
		next := k + 2 + len(name)
		if next <= len(s) && strings.EqualFold(s[k+2:next], name) && (next == len(s) || !isTagNameByte(s[next])) {
			gt := strings.IndexByte(s[next:], '>')
			if gt < 0 {
				return s[:k], len(s)
			}
			return s[:k], next + gt + 1
		}
		from = k + 2
	}
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func isTagNameByte(c byte) bool {
	return isASCIILetter(c) || c >= '0' && c <= '9' || c == '-' || c == ':'
}

// collapseSpace trims s and turns every run of white space into one space.
func collapseSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

var rawTextTags = map[string]bool{"script": true, "style": true, "template": true, "noscript": true}

var blockTags = map[string]bool{
	"address": true, "article": true, "aside": true, "blockquote": true, "body": true, "br": true,
	"caption": true, "dd": true, "div": true, "dl": true, "dt": true, "fieldset": true,
	"figcaption": true, "figure": true, "footer": true, "form": true, "h1": true, "h2": true,
	"h3": true, "h4": true, "h5": true, "h6": true, "head": true, "header": true, "hr": true,
	"html": true, "li": true, "main": true, "nav": true, "ol": true, "p": true, "pre": true,
	"section": true, "table": true, "tbody": true, "td": true, "tfoot": true, "th": true,
	"thead": true, "title": true, "tr": true, "ul": true, "img": true, "option": true,
}
