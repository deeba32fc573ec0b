/* xml.c: the strict little XML reader of include/cairn/sys/xml.h.
 *
 * One pass over the bytes with an explicit element stack; nothing is built
 * but the current path and the current element's text.  The input is
 * untrusted (any server, or anything between us and it), so every read is
 * bounds-checked against `end`, every limit is fixed (depth, path, text),
 * and anything outside the small subset S3 uses is an error rather than a
 * guess.  Pure function: no state outside the call, safe from any thread.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cairn/buf.h>
#include <cairn/sys/xml.h>

#define XML_MAX_DEPTH 32
#define XML_MAX_PATH 512
#define XML_MAX_TEXT ((size_t)1 << 20)

typedef struct xml_parser {
	const char *start, *p, *end;
	char path[XML_MAX_PATH + 1];
	size_t path_len[XML_MAX_DEPTH + 1]; /* path length before each level's name */
	unsigned char has_children[XML_MAX_DEPTH + 1];
	int depth;
	int root_done;
	cairn_buf text;
	cairn_xml_cb cb;
	void *payload;
} xml_parser;

static int malformed(const xml_parser *x, const char *why)
{
	return cairn_error_set(CAIRN_EINVAL, "malformed XML: %s at byte %zu", why,
		(size_t)(x->p - x->start));
}

static int starts(const xml_parser *x, const char *lit)
{
	size_t n = strlen(lit);
	return (size_t)(x->end - x->p) >= n && memcmp(x->p, lit, n) == 0;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_name_start(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' || c >= 0x80;
}

static int is_name_char(unsigned char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static void skip_space(xml_parser *x)
{
	while (x->p < x->end && is_space(*x->p))
		x->p++;
}

/* Read a name at p; *name and *len receive it.  Returns 0 or an error. */
static int read_name(xml_parser *x, const char **name, size_t *len)
{
	const char *s = x->p;

	if (x->p >= x->end || !is_name_start((unsigned char)*x->p))
		return malformed(x, "expected a name");
	while (x->p < x->end && is_name_char((unsigned char)*x->p))
		x->p++;
	*name = s;
	*len = (size_t)(x->p - s);
	return 0;
}

/* Skip past `lit`, which must occur before the end. */
static int skip_past(xml_parser *x, const char *lit, const char *what)
{
	size_t n = strlen(lit);

	while ((size_t)(x->end - x->p) >= n) {
		if (memcmp(x->p, lit, n) == 0) {
			x->p += n;
			return 0;
		}
		x->p++;
	}
	return malformed(x, what);
}

static int append_utf8(cairn_buf *b, uint32_t cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | cp >> 18);
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return cairn_buf_append(b, u, n);
}

/* Decode the entity at p ('&') into out (NULL: check only). */
static int read_entity(xml_parser *x, cairn_buf *out)
{
	static const struct { const char *name; char c; } named[] = {
		{ "lt;", '<' }, { "gt;", '>' }, { "amp;", '&' }, { "quot;", '"' }, { "apos;", '\'' },
	};
	x->p++; /* '&' */
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		if (starts(x, named[i].name)) {
			x->p += strlen(named[i].name);
			return out ? cairn_buf_append(out, &named[i].c, 1) : 0;
		}
	}
	if (x->p < x->end && *x->p == '#') {
		uint32_t cp = 0;
		int hex = 0, digits = 0;
		x->p++;
		if (x->p < x->end && *x->p == 'x') {
			hex = 1;
			x->p++;
		}
		for (; x->p < x->end && *x->p != ';'; x->p++, digits++) {
			char c = *x->p;
			int v = c >= '0' && c <= '9' ? c - '0'
				: hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
				: hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
			if (v < 0 || digits >= 8)
				return malformed(x, "bad character reference");
			cp = cp * (hex ? 16 : 10) + (uint32_t)v;
		}
		if (x->p >= x->end || digits == 0 || cp == 0 || cp > 0x10ffff
			|| (cp >= 0xd800 && cp <= 0xdfff))
			return malformed(x, "bad character reference");
		x->p++; /* ';' */
		return out ? append_utf8(out, cp) : 0;
	}
	return malformed(x, "unknown entity");
}

/* Attributes up to '>' or '/>'; sets *self_closing. */
static int read_attributes(xml_parser *x, int *self_closing)
{
	for (;;) {
		const char *name;
		size_t len;
		char quote;
		int had_space = x->p < x->end && is_space(*x->p);

		skip_space(x);
		if (x->p >= x->end)
			return malformed(x, "unterminated tag");
		if (*x->p == '>') {
			x->p++;
			*self_closing = 0;
			return 0;
		}
		if (starts(x, "/>")) {
			x->p += 2;
			*self_closing = 1;
			return 0;
		}
		if (!had_space)
			return malformed(x, "expected a space before an attribute");
		CAIRN_TRY(read_name(x, &name, &len));
		skip_space(x);
		if (x->p >= x->end || *x->p != '=')
			return malformed(x, "expected '=' after an attribute name");
		x->p++;
		skip_space(x);
		if (x->p >= x->end || (*x->p != '"' && *x->p != '\''))
			return malformed(x, "expected a quoted attribute value");
		quote = *x->p++;
		while (x->p < x->end && *x->p != quote) {
			if (*x->p == '<')
				return malformed(x, "'<' in an attribute value");
			if (*x->p == '&')
				CAIRN_TRY(read_entity(x, NULL));
			else
				x->p++;
		}
		if (x->p >= x->end)
			return malformed(x, "unterminated attribute value");
		x->p++;
	}
}

static const char *local_name(const char *name, size_t *len)
{
	const char *colon = memchr(name, ':', *len);
	if (colon) {
		*len -= (size_t)(colon + 1 - name);
		return colon + 1;
	}
	return name;
}

static int emit(xml_parser *x, int leaf)
{
	int r;

	if (leaf) {
		if (!cairn_buf_cstr(&x->text))
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		r = x->cb(x->path, (const char *)x->text.data, x->text.len, x->payload);
	} else {
		r = x->cb(x->path, NULL, 0, x->payload);
	}
	return r;
}

static int start_element(xml_parser *x)
{
	const char *name;
	size_t len, at;
	int self_closing = 0;

	x->p++; /* '<' */
	CAIRN_TRY(read_name(x, &name, &len));
	CAIRN_TRY(read_attributes(x, &self_closing));
	if (x->root_done)
		return malformed(x, "a second root element");
	if (x->depth >= XML_MAX_DEPTH)
		return malformed(x, "elements nested too deep");
	name = local_name(name, &len);
	if (len == 0)
		return malformed(x, "empty local name");
	if (x->depth > 0)
		x->has_children[x->depth] = 1;
	at = x->depth > 0 ? strlen(x->path) : 0;
	if (at + (x->depth > 0) + len > XML_MAX_PATH)
		return malformed(x, "element path too long");
	x->depth++;
	x->path_len[x->depth] = at;
	x->has_children[x->depth] = 0;
	if (x->depth > 1)
		x->path[at++] = '/';
	memcpy(x->path + at, name, len);
	x->path[at + len] = '\0';
	cairn_buf_clear(&x->text);
	if (self_closing) {
		int r = emit(x, 1);
		if (r)
			return r;
		x->path[x->path_len[x->depth]] = '\0';
		if (--x->depth == 0)
			x->root_done = 1;
	}
	return 0;
}

static int end_element(xml_parser *x)
{
	const char *name, *own;
	size_t len, own_len;
	int r;

	x->p += 2; /* "</" */
	CAIRN_TRY(read_name(x, &name, &len));
	skip_space(x);
	if (x->p >= x->end || *x->p != '>')
		return malformed(x, "unterminated end tag");
	x->p++;
	if (x->depth == 0)
		return malformed(x, "end tag without a start tag");
	name = local_name(name, &len);
	own = x->path + x->path_len[x->depth] + (x->depth > 1);
	own_len = strlen(own);
	if (own_len != len || memcmp(own, name, len) != 0)
		return malformed(x, "mismatched end tag");
	if ((r = emit(x, !x->has_children[x->depth])) != 0)
		return r;
	x->path[x->path_len[x->depth]] = '\0';
	cairn_buf_clear(&x->text);
	if (--x->depth == 0)
		x->root_done = 1;
	return 0;
}

static int add_text(xml_parser *x, const char *s, size_t n)
{
	if (x->depth == 0) {
		for (size_t i = 0; i < n; i++)
			if (!is_space(s[i]))
				return malformed(x, "text outside the root element");
		return 0;
	}
	if (x->text.len + n > XML_MAX_TEXT)
		return malformed(x, "text too long");
	return cairn_buf_append(&x->text, s, n);
}

static int parse(xml_parser *x)
{
	int r;

	if (starts(x, "\xef\xbb\xbf"))
		x->p += 3;
	while (x->p < x->end) {
		if (*x->p != '<') {
			if (*x->p == '&') {
				if (x->depth == 0)
					return malformed(x, "text outside the root element");
				CAIRN_TRY(read_entity(x, &x->text));
				if (x->text.len > XML_MAX_TEXT)
					return malformed(x, "text too long");
				continue;
			}
			const char *s = x->p;
			while (x->p < x->end && *x->p != '<' && *x->p != '&') {
				if (*x->p == '\0')
					return malformed(x, "NUL byte");
				x->p++;
			}
			CAIRN_TRY(add_text(x, s, (size_t)(x->p - s)));
			continue;
		}
		if (starts(x, "<?")) {
			CAIRN_TRY(skip_past(x, "?>", "unterminated processing instruction"));
		} else if (starts(x, "<!--")) {
			CAIRN_TRY(skip_past(x, "-->", "unterminated comment"));
		} else if (starts(x, "<![CDATA[")) {
			const char *s;
			if (x->depth == 0)
				return malformed(x, "CDATA outside the root element");
			x->p += 9;
			s = x->p;
			CAIRN_TRY(skip_past(x, "]]>", "unterminated CDATA section"));
			CAIRN_TRY(add_text(x, s, (size_t)(x->p - 3 - s)));
		} else if (starts(x, "<!")) {
			return malformed(x, "DOCTYPE or declaration not allowed");
		} else if (starts(x, "</")) {
			if ((r = end_element(x)) != 0)
				return r;
		} else {
			if ((r = start_element(x)) != 0)
				return r;
		}
	}
	if (x->depth > 0)
		return malformed(x, "unexpected end of document");
	if (!x->root_done)
		return malformed(x, "no root element");
	return 0;
}

int cairn_xml_parse(const char *doc, size_t len, cairn_xml_cb cb, void *payload)
{
	xml_parser *x;
	int r;

	if (!doc && len)
		return cairn_error_set(CAIRN_EINVAL, "no XML document given");
	if (!(x = calloc(1, sizeof(*x))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	x->start = x->p = doc ? doc : "";
	x->end = x->p + len;
	x->cb = cb;
	x->payload = payload;
	r = parse(x);
	cairn_buf_release(&x->text);
	free(x);
	return r;
}
