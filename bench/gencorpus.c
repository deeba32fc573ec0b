/* gencorpus.c: the benchmark corpora, generated deterministically.
 *
 * Every byte comes from a seed, so two machines (or two sessions) that run
 * the same command get the same files, byte for byte; only ctime differs.
 * Three kinds of content:
 *   random  an AES-128-CTR keystream (OpenSSL EVP; key = SHA-256 of the seed
 *           text), incompressible like media or encrypted files;
 *   text    words drawn from a fixed vocabulary of 6,000 syllable-built
 *           pseudo-words with a Zipf (Mandelbrot) law, a word's successor
 *           taken from its own short list a third of the time (so phrases
 *           repeat, as in real prose), sentences, commas, numbers, lines
 *           wrapped at 72 columns, paragraphs.  zstd -3 keeps about a third
 *           of it, as it does of English text; it is not `yes` repetition;
 *   struct  32-byte binary records (a slowly rising timestamp, ids from a
 *           skewed law, small counters, a tag from a short list), like logs
 *           or database pages: compressible, but not like text.
 * "mixed" is a sequence of 16 KiB..1 MiB segments of the three kinds (40%
 * random, 40% text, 20% struct).
 *
 * Commands (sizes in bytes):
 *   gencorpus file KIND SEED SIZE PATH      one file; KIND random|text|struct|mixed
 *   gencorpus files DIR SEED COUNT MIN MAX uniform|log TEXT% RANDOM%
 *       COUNT files DIR/dNN/dNN/fNNNNNN.{txt,bin,dat}, 100 to a directory;
 *       sizes uniform or log-uniform in [MIN, MAX]; kinds by percentage
 *       (the rest struct); fixed mtimes.
 *   gencorpus mutate DIR SEED
 *       the "1% changed" step, in place: every file of 8 MiB or more gets
 *       1% of it rewritten at a seeded offset; of the smaller files 1% get
 *       1-4 KiB appended, 0.1% are deleted, and 0.1% new files are added.
 *       Prints what it changed.
 * Walks are sorted by name, so the choices depend on the seed only.
 *
 * Build: make build/bench/gencorpus (links libcrypto only).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define BUFSZ ((size_t)1 << 20)

static void die(const char *what)
{
	fprintf(stderr, "gencorpus: %s: %s\n", what, errno ? strerror(errno) : "failed");
	exit(1);
}

/* --- splitmix64: the seeded choices (not the random bytes) --- */

typedef struct rng {
	uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double rng_unit(rng *r) /* [0, 1) */
{
	return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t rng_range(rng *r, uint64_t lo, uint64_t hi) /* [lo, hi] */
{
	return lo + rng_next(r) % (hi - lo + 1);
}

static uint64_t seed_hash(const char *text, uint64_t salt)
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	char buf[512];
	uint64_t v;
	snprintf(buf, sizeof(buf), "cairn-bench:%s:%" PRIu64, text, salt);
	SHA256((const unsigned char *)buf, strlen(buf), d);
	memcpy(&v, d, sizeof(v));
	return v;
}

/* --- random: AES-128-CTR keystream --- */

typedef struct aes_stream {
	EVP_CIPHER_CTX *ctx;
	unsigned char *zero;
} aes_stream;

static void aes_init(aes_stream *a, const char *seed)
{
	unsigned char d[SHA256_DIGEST_LENGTH], iv[16] = { 0 };
	char buf[512];
	snprintf(buf, sizeof(buf), "cairn-bench-aes:%s", seed);
	SHA256((const unsigned char *)buf, strlen(buf), d);
	if (!(a->ctx = EVP_CIPHER_CTX_new()) || !(a->zero = calloc(1, BUFSZ)) ||
	    EVP_EncryptInit_ex(a->ctx, EVP_aes_128_ctr(), NULL, d, iv) != 1)
		die("AES-CTR setup");
}

static void aes_fill(aes_stream *a, unsigned char *out, size_t n)
{
	while (n) {
		int k = (int)(n < BUFSZ ? n : BUFSZ), outl = 0;
		if (EVP_EncryptUpdate(a->ctx, out, &outl, a->zero, k) != 1 || outl != k)
			die("AES-CTR");
		out += k;
		n -= (size_t)k;
	}
}

/* --- text: Zipf words with sticky successors --- */

#define VOCAB 6000
#define SUCC 6

typedef struct vocab {
	char *word[VOCAB];
	unsigned char len[VOCAB];
	double cdf[VOCAB];
	uint16_t succ[VOCAB][SUCC];
} vocab;

static vocab V;

static unsigned zipf(rng *r)
{
	double u = rng_unit(r) * V.cdf[VOCAB - 1];
	unsigned lo = 0, hi = VOCAB - 1;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (V.cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The vocabulary is the same for every seed: it is the "language". */
static void vocab_init(void)
{
	static const char *onset[] = { "", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n",
		"p", "r", "s", "t", "v", "w", "st", "tr", "ch", "sh", "th", "br", "pl", "gr", "qu" };
	static const char *vowel[] = { "a", "e", "i", "o", "u", "ea", "ou", "ai", "io", "e", "a", "y" };
	static const char *coda[] = { "", "", "", "n", "r", "s", "t", "l", "nd", "st", "ng", "ck",
		"m", "rt" };
	rng r = { 0x5eed0f7e47ull };
	double acc = 0;
	for (unsigned i = 0; i < VOCAB; i++) {
		char w[64] = "";
		unsigned syl = 1 + (i > 40) + (i > 700) + (i > 2500 && rng_next(&r) % 2);
		for (unsigned s = 0; s < syl; s++) {
			strcat(w, onset[rng_next(&r) % (sizeof(onset) / sizeof(*onset))]);
			strcat(w, vowel[rng_next(&r) % (sizeof(vowel) / sizeof(*vowel))]);
			strcat(w, coda[rng_next(&r) % (sizeof(coda) / sizeof(*coda))]);
		}
		if (!(V.word[i] = strdup(w)))
			die("out of memory");
		V.len[i] = (unsigned char)strlen(w);
		acc += 1.0 / pow(i + 2.7, 1.0);
		V.cdf[i] = acc;
	}
	for (unsigned i = 0; i < VOCAB; i++)
		for (unsigned k = 0; k < SUCC; k++)
			V.succ[i][k] = (uint16_t)zipf(&r);
}

typedef struct textgen {
	rng r;
	unsigned prev;     /* previous word */
	unsigned col;      /* output column */
	unsigned left;     /* words left in the sentence */
	unsigned sentences;/* left in the paragraph */
	char tok[96];
	size_t tok_len, tok_off;
} textgen;

static void text_init(textgen *t, uint64_t seed)
{
	memset(t, 0, sizeof(*t));
	t->r.s = seed;
}

/* The next token (a word with its leading separator) into t->tok. */
static void text_token(textgen *t)
{
	char w[64];
	size_t n = 0;
	int start = t->left == 0;
	unsigned id;

	if (start) {
		t->left = (unsigned)rng_range(&t->r, 4, 24);
		if (t->sentences == 0) {
			t->sentences = (unsigned)rng_range(&t->r, 3, 8);
			if (t->col) {
				t->tok[n++] = '\n';
				t->tok[n++] = '\n';
				t->col = 0;
			}
		}
		t->sentences--;
	}
	if (rng_unit(&t->r) < 0.02) {
		id = VOCAB; /* a number */
		snprintf(w, sizeof(w), "%u", (unsigned)rng_range(&t->r, 0, rng_next(&t->r) % 2 ? 99 : 9999));
	} else {
		id = (!start && rng_unit(&t->r) < 0.35) ? V.succ[t->prev][rng_next(&t->r) % SUCC]
							  : zipf(&t->r);
		memcpy(w, V.word[id], V.len[id] + 1u);
		if (start)
			w[0] = (char)(w[0] >= 'a' && w[0] <= 'z' ? w[0] - 32 : w[0]);
		t->prev = id;
	}
	size_t wl = strlen(w);
	if (t->col && t->col + 1 + wl > 72) {
		t->tok[n++] = '\n';
		t->col = 0;
	} else if (t->col) {
		t->tok[n++] = ' ';
		t->col++;
	}
	memcpy(t->tok + n, w, wl);
	n += wl;
	t->col += (unsigned)wl;
	t->left--;
	if (t->left == 0) {
		t->tok[n++] = rng_unit(&t->r) < 0.06 ? '?' : '.';
		t->col++;
	} else if (rng_unit(&t->r) < 0.08) {
		t->tok[n++] = ',';
		t->col++;
	}
	t->tok_len = n;
	t->tok_off = 0;
}

static void text_fill(textgen *t, unsigned char *out, size_t n)
{
	while (n) {
		if (t->tok_off == t->tok_len)
			text_token(t);
		size_t k = t->tok_len - t->tok_off;
		if (k > n)
			k = n;
		memcpy(out, t->tok + t->tok_off, k);
		t->tok_off += k;
		out += k;
		n -= k;
	}
}

/* --- struct: binary records --- */

typedef struct structgen {
	rng r;
	uint64_t ts;
	unsigned char rec[32];
	size_t off;
} structgen;

static void struct_init(structgen *s, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->r.s = seed;
	s->ts = 1700000000000ull + seed % 1000000;
	s->off = sizeof(s->rec);
}

static void struct_fill(structgen *s, unsigned char *out, size_t n)
{
	static const char tags[16][9] = { "GET     ", "PUT     ", "DELETE  ", "POST    ", "HEAD    ",
		"LIST    ", "SYNC    ", "FLUSH   ", "OPEN    ", "CLOSE   ", "READ    ", "WRITE   ",
		"STAT    ", "LOCK    ", "UNLOCK  ", "RENAME  " };
	while (n) {
		if (s->off == sizeof(s->rec)) {
			uint32_t id, val;
			uint16_t flags;
			s->ts += rng_range(&s->r, 0, 1500);
			id = (uint32_t)(rng_unit(&s->r) * rng_unit(&s->r) * 5000);
			val = (uint32_t)rng_range(&s->r, 0, rng_next(&s->r) % 4 ? 255 : 65535);
			flags = (uint16_t)(rng_next(&s->r) % 3 ? 0x0101 : 0x0180);
			memcpy(s->rec, &s->ts, 8);
			memcpy(s->rec + 8, &id, 4);
			memcpy(s->rec + 12, &val, 4);
			memcpy(s->rec + 16, &flags, 2);
			memcpy(s->rec + 18, tags[rng_next(&s->r) % 16], 8);
			memset(s->rec + 26, 0, 6);
			s->off = 0;
		}
		size_t k = sizeof(s->rec) - s->off;
		if (k > n)
			k = n;
		memcpy(out, s->rec + s->off, k);
		s->off += k;
		out += k;
		n -= k;
	}
}

/* --- one content source of a kind --- */

enum kind { K_RANDOM, K_TEXT, K_STRUCT, K_MIXED };

typedef struct source {
	enum kind kind;
	aes_stream *aes;
	textgen text;
	structgen st;
	rng r;              /* mixed: segment choices */
	enum kind seg_kind;
	size_t seg_left;
} source;

static void source_init(source *s, enum kind kind, aes_stream *aes, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->aes = aes;
	text_init(&s->text, seed ^ 0x7e47);
	struct_init(&s->st, seed ^ 0x57c7);
	s->r.s = seed ^ 0x313d;
}

static void source_fill(source *s, unsigned char *out, size_t n)
{
	while (n) {
		enum kind k = s->kind;
		size_t m = n;
		if (k == K_MIXED) {
			if (s->seg_left == 0) {
				double u = rng_unit(&s->r);
				s->seg_kind = u < 0.4 ? K_RANDOM : u < 0.8 ? K_TEXT : K_STRUCT;
				s->seg_left = (size_t)rng_range(&s->r, 16 << 10, 1 << 20);
			}
			k = s->seg_kind;
			if (m > s->seg_left)
				m = s->seg_left;
			s->seg_left -= m;
		}
		if (k == K_RANDOM)
			aes_fill(s->aes, out, m);
		else if (k == K_TEXT)
			text_fill(&s->text, out, m);
		else
			struct_fill(&s->st, out, m);
		out += m;
		n -= m;
	}
}

static enum kind parse_kind(const char *s)
{
	if (!strcmp(s, "random"))
		return K_RANDOM;
	if (!strcmp(s, "text"))
		return K_TEXT;
	if (!strcmp(s, "struct"))
		return K_STRUCT;
	if (!strcmp(s, "mixed"))
		return K_MIXED;
	fprintf(stderr, "gencorpus: unknown kind %s\n", s);
	exit(2);
}

static unsigned char *buf_get(void)
{
	static unsigned char *b;
	if (!b && !(b = malloc(BUFSZ)))
		die("out of memory");
	return b;
}

static void write_all(int fd, const unsigned char *p, size_t n, const char *path)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			die(path);
		p += w;
		n -= (size_t)w;
	}
}

/* Write `size` bytes of s to path (created or truncated). */
static void emit(const char *path, source *s, uint64_t size, int flags)
{
	unsigned char *b = buf_get();
	int fd = open(path, O_WRONLY | O_CREAT | flags, 0644);
	if (fd < 0)
		die(path);
	while (size) {
		size_t k = size < BUFSZ ? (size_t)size : BUFSZ;
		source_fill(s, b, k);
		write_all(fd, b, k, path);
		size -= k;
	}
	if (close(fd) < 0)
		die(path);
}

static void set_mtime(const char *path, uint64_t n)
{
	struct timespec ts[2] = { { (time_t)(1700000000 + n * 37), 0 }, { (time_t)(1700000000 + n * 37), 0 } };
	if (utimensat(AT_FDCWD, path, ts, 0) < 0)
		die(path);
}

static void mkdir_p(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
				die(tmp);
			*p = '/';
		}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		die(tmp);
}

static uint64_t parse_u64(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end) {
		fprintf(stderr, "gencorpus: not a number: %s\n", s);
		exit(2);
	}
	return v;
}

static int cmd_file(char **av)
{
	aes_stream aes;
	source s;
	aes_init(&aes, av[1]);
	source_init(&s, parse_kind(av[0]), &aes, seed_hash(av[1], 0));
	emit(av[3], &s, parse_u64(av[2]), O_TRUNC);
	set_mtime(av[3], 0);
	return 0;
}

static uint64_t draw_size(rng *r, uint64_t lo, uint64_t hi, int logdist)
{
	if (!logdist)
		return rng_range(r, lo, hi);
	double l = log((double)lo), h = log((double)hi + 1);
	uint64_t v = (uint64_t)exp(l + (h - l) * rng_unit(r));
	return v < lo ? lo : v > hi ? hi : v;
}

static int cmd_files(char **av)
{
	const char *dir = av[0], *seed = av[1];
	uint64_t count = parse_u64(av[2]), lo = parse_u64(av[3]), hi = parse_u64(av[4]);
	int logdist = !strcmp(av[5], "log");
	unsigned pt = (unsigned)parse_u64(av[6]), pr = (unsigned)parse_u64(av[7]);
	aes_stream aes;
	source src[3];
	static const char *ext[3] = { "bin", "txt", "dat" };
	rng r = { seed_hash(seed, 1) };
	char path[4096];

	if (lo < 1 || hi < lo || pt + pr > 100 || (strcmp(av[5], "log") && strcmp(av[5], "uniform"))) {
		fprintf(stderr, "gencorpus files: bad arguments\n");
		return 2;
	}
	aes_init(&aes, seed);
	source_init(&src[K_RANDOM], K_RANDOM, &aes, 0);
	source_init(&src[K_TEXT], K_TEXT, &aes, seed_hash(seed, 2));
	source_init(&src[K_STRUCT], K_STRUCT, &aes, seed_hash(seed, 3));
	for (uint64_t i = 0; i < count; i++) {
		unsigned pick = (unsigned)(rng_next(&r) % 100);
		enum kind k = pick < pt ? K_TEXT : pick < pt + pr ? K_RANDOM : K_STRUCT;
		uint64_t size = draw_size(&r, lo, hi, logdist);
		if (i % 100 == 0) {
			snprintf(path, sizeof(path), "%s/d%02" PRIu64 "/d%02" PRIu64, dir, i / 10000,
				 i / 100 % 100);
			mkdir_p(path);
		}
		snprintf(path, sizeof(path), "%s/d%02" PRIu64 "/d%02" PRIu64 "/f%06" PRIu64 ".%s", dir,
			 i / 10000, i / 100 % 100, i, ext[k]);
		emit(path, &src[k], size, O_TRUNC | O_EXCL);
		set_mtime(path, i);
	}
	return 0;
}

/* --- mutate --- */

typedef struct flist {
	char **path;
	uint64_t *size;
	size_t n, cap;
} flist;

static void walk(flist *l, const char *dir)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0)
		die(dir);
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		char path[4096];
		struct stat st;
		if (strcmp(name, ".") && strcmp(name, "..")) {
			snprintf(path, sizeof(path), "%s/%s", dir, name);
			if (lstat(path, &st) < 0)
				die(path);
			if (S_ISDIR(st.st_mode)) {
				walk(l, path);
			} else if (S_ISREG(st.st_mode)) {
				if (l->n == l->cap) {
					l->cap = l->cap ? l->cap * 2 : 1024;
					l->path = realloc(l->path, l->cap * sizeof(*l->path));
					l->size = realloc(l->size, l->cap * sizeof(*l->size));
					if (!l->path || !l->size)
						die("out of memory");
				}
				if (!(l->path[l->n] = strdup(path)))
					die("out of memory");
				l->size[l->n++] = (uint64_t)st.st_size;
			}
		}
		free(ents[i]);
	}
	free(ents);
}

static enum kind kind_of(const char *path)
{
	size_t n = strlen(path);
	if (n > 4 && !strcmp(path + n - 4, ".txt"))
		return K_TEXT;
	if (n > 4 && !strcmp(path + n - 4, ".dat"))
		return K_STRUCT;
	if (n > 4 && !strcmp(path + n - 4, ".bin"))
		return K_RANDOM;
	return K_MIXED;
}

static int cmd_mutate(char **av)
{
	const char *dir = av[0], *seed = av[1];
	flist l = { 0 };
	rng r = { seed_hash(seed, 10) };
	aes_stream aes;
	source src[4];
	unsigned char *b = buf_get();
	uint64_t rewritten = 0, appended = 0, added = 0, n_big = 0, n_app = 0, n_del = 0, n_add = 0;
	uint64_t total = 0;

	walk(&l, dir);
	aes_init(&aes, seed);
	for (int k = 0; k < 4; k++)
		source_init(&src[k], (enum kind)k, &aes, seed_hash(seed, 20 + (uint64_t)k));
	for (size_t i = 0; i < l.n; i++) {
		const char *path = l.path[i];
		total += l.size[i];
		if (l.size[i] >= (8u << 20)) {
			/* rewrite 1% of a big file in place, at a seeded offset */
			uint64_t len = l.size[i] / 100, off = rng_next(&r) % (l.size[i] - len);
			int fd = open(path, O_WRONLY);
			enum kind k = kind_of(path);
			if (fd < 0 || lseek(fd, (off_t)off, SEEK_SET) < 0)
				die(path);
			for (uint64_t left = len; left;) {
				size_t m = left < BUFSZ ? (size_t)left : BUFSZ;
				source_fill(&src[k], b, m);
				write_all(fd, b, m, path);
				left -= m;
			}
			if (close(fd) < 0)
				die(path);
			rewritten += len;
			n_big++;
			continue;
		}
		double u = rng_unit(&r);
		if (u < 0.001) {
			if (unlink(path) < 0)
				die(path);
			n_del++;
		} else if (u < 0.011) {
			uint64_t len = rng_range(&r, 1024, 4096);
			emit(path, &src[kind_of(path)], len, O_APPEND);
			appended += len;
			n_app++;
		} else if (u < 0.012) {
			char np[4096];
			const char *slash = strrchr(path, '/');
			uint64_t len = rng_range(&r, 1024, 16384);
			snprintf(np, sizeof(np), "%.*s/new-%06zu.txt", (int)(slash - path), path, i);
			emit(np, &src[K_TEXT], len, O_TRUNC | O_EXCL);
			added += len;
			n_add++;
		}
	}
	printf("mutate %s: %zu files, %" PRIu64 " bytes: %" PRIu64 " big files with %" PRIu64
	       " bytes rewritten, %" PRIu64 " files with %" PRIu64 " bytes appended, %" PRIu64
	       " deleted, %" PRIu64 " added (%" PRIu64 " bytes); %.2f%% of the bytes changed\n",
	       dir, l.n, total, n_big, rewritten, n_app, appended, n_del, n_add, added,
	       total ? 100.0 * (double)(rewritten + appended + added) / (double)total : 0.0);
	return 0;
}

int main(int argc, char **argv)
{
	vocab_init();
	if (argc == 6 && !strcmp(argv[1], "file"))
		return cmd_file(argv + 2);
	if (argc == 10 && !strcmp(argv[1], "files"))
		return cmd_files(argv + 2);
	if (argc == 4 && !strcmp(argv[1], "mutate"))
		return cmd_mutate(argv + 2);
	fprintf(stderr,
		"usage: gencorpus file random|text|struct|mixed SEED SIZE PATH\n"
		"       gencorpus files DIR SEED COUNT MIN MAX uniform|log TEXT%% RANDOM%%\n"
		"       gencorpus mutate DIR SEED\n");
	return 2;
}
