/*
 * gen_corpus.c
 *
 * Writes the seed corpus of the fuzz targets: `make corpus` regenerates
 * test/fuzz/corpus/ from this file (the files are committed, so CI does
 * not need to run it).  Valid deltas are built with slc_delta_encode;
 * malformed ones by hand, one file per error shape; several entries in one
 * file are joined with the separator "|SLC|" that fuzz_delta splits on.
 *
 * usage: gen_corpus DIR     (creates DIR/delta/ and DIR/hash/)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "synclog_core.h"

#define SEP		"|SLC|"

static const char *outdir;

static void
die(const char *what)
{
	fprintf(stderr, "gen_corpus: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* A growable byte buffer. */
typedef struct
{
	uint8_t    *p;
	size_t		len;
	size_t		cap;
} buf;

static void
put(buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 64;

		while (cap < b->len + len)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (b->p == NULL)
			die("realloc");
		b->cap = cap;
	}
	if (len > 0)
		memcpy(b->p + b->len, data, len);
	b->len += len;
}

static void
put_u8(buf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void
put_u32(buf *b, uint32_t v)
{
	uint8_t		le[4] = {(uint8_t) v, (uint8_t) (v >> 8), (uint8_t) (v >> 16),
	(uint8_t) (v >> 24)};

	put(b, le, 4);
}

static void
write_file(const char *sub, const char *name, const buf *b)
{
	char		path[1024];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
	f = fopen(path, "wb");
	if (f == NULL)
		die(path);
	if (b->len > 0 && fwrite(b->p, 1, b->len, f) != b->len)
		die(path);
	if (fclose(f) != 0)
		die(path);
}

static slc_change
set(const char *k, const char *v)
{
	slc_change	c;

	memset(&c, 0, sizeof(c));
	c.key = (const uint8_t *) k;
	c.klen = (uint32_t) strlen(k);
	c.val = (const uint8_t *) v;
	c.vlen = (uint32_t) strlen(v);
	return c;
}

static slc_change
setn(const uint8_t *k, uint32_t klen, const uint8_t *v, uint32_t vlen)
{
	slc_change	c;

	memset(&c, 0, sizeof(c));
	c.key = k;
	c.klen = klen;
	c.val = v;
	c.vlen = vlen;
	return c;
}

static slc_change
del(const char *k)
{
	slc_change	c;

	memset(&c, 0, sizeof(c));
	c.key = (const uint8_t *) k;
	c.klen = (uint32_t) strlen(k);
	c.is_delete = 1;
	return c;
}

/* Append the encoding of changes[0..n) to b. */
static void
put_delta(buf *b, const slc_change *c, uint32_t n)
{
	size_t		size = slc_delta_encoded_size(c, n);
	uint8_t    *out = malloc(size);

	if (out == NULL)
		die("malloc");
	put(b, out, slc_delta_encode(c, n, out));
	free(out);
}

static void
delta_file(const char *name, const slc_change *c, uint32_t n)
{
	buf			b = {0};

	put_delta(&b, c, n);
	write_file("delta", name, &b);
	free(b.p);
}

/* A file given as raw bytes. */
static void
raw_file(const char *sub, const char *name, const void *data, size_t len)
{
	buf			b = {0};

	put(&b, data, len);
	write_file(sub, name, &b);
	free(b.p);
}

static void
mkdir_p(const char *sub)
{
	char		path[1024];

	snprintf(path, sizeof(path), "%s/%s", outdir, sub);
	if (mkdir(outdir, 0777) != 0 && errno != EEXIST)
		die(outdir);
	if (mkdir(path, 0777) != 0 && errno != EEXIST)
		die(path);
}

static void
gen_delta(void)
{
	static uint8_t big_key[SLC_KEY_MAX];
	static uint8_t long_val[1500];
	slc_change	c[8] = {{0}};
	buf			b = {0};
	size_t		i;

	for (i = 0; i < sizeof(big_key); i++)
		big_key[i] = (uint8_t) ('a' + i % 26);
	for (i = 0; i < sizeof(long_val); i++)
		long_val[i] = (uint8_t) (i * 7);

	/* --- valid deltas --- */
	delta_file("valid-empty", c, 0);
	c[0] = set("k1", "v1");
	c[1] = del("k2");
	delta_file("valid-f1-set-and-delete", c, 2);	/* PROTOCOL.md (f1) */
	c[0] = set("k", "value");
	delta_file("valid-one-set", c, 1);
	c[0] = del("k");
	delta_file("valid-one-delete", c, 1);
	c[0] = set("", "");
	delta_file("valid-empty-key-empty-value", c, 1);
	c[0] = del("");
	delta_file("valid-delete-empty-key", c, 1);
	c[0] = setn(big_key, SLC_KEY_MAX, (const uint8_t *) "v", 1);
	delta_file("valid-key-1024", c, 1);
	/* 5 + klen + vlen around 512: the one-shot/streaming hash boundary */
	c[0] = setn(big_key, 300, long_val, 207);
	c[1] = setn(big_key + 1, 300, long_val, 208);
	delta_file("valid-hash-boundary", c, 2);
	c[0] = setn(big_key, 8, long_val, sizeof(long_val));
	delta_file("valid-long-value", c, 1);
	c[0] = set("a", "1");
	c[1] = set("b", "2");
	c[2] = set("ab", "3");
	c[3] = set("ba", "4");
	c[4] = del("abc");
	c[5] = set("\x01", "");
	c[6] = set("zz", "\xff\xfe");
	delta_file("valid-seven-changes", c, 7);
	/* key and value bytes that look like the separator and lengths */
	c[0] = setn((const uint8_t *) "\xff\xff\xff\xff", 4,
				(const uint8_t *) "\x01\x00\x00\x00\x00", 5);
	delta_file("valid-binary-bytes", c, 1);

	/* --- several entries: overwrites, deletes, re-sets, watermarks --- */
	c[0] = set("a", "1");
	c[1] = set("b", "2");
	put_delta(&b, c, 2);
	put(&b, SEP, 5);
	c[0] = set("a", "11");
	c[1] = del("b");
	put_delta(&b, c, 2);
	put(&b, SEP, 5);
	c[0] = set("b", "22");
	c[1] = del("a");
	c[2] = set("c", "3");
	put_delta(&b, c, 3);
	put(&b, SEP, 5);
	put_delta(&b, c, 0);
	put(&b, SEP, 5);
	c[0] = set("a", "");
	put_delta(&b, c, 1);
	write_file("delta", "log-overwrite-delete-reset", &b);
	b.len = 0;

	/* a valid entry, a rejected one, then a valid one again */
	c[0] = set("x", "1");
	put_delta(&b, c, 1);
	put(&b, SEP, 5);
	c[0] = set("x", "2");
	c[1] = set("x", "3");
	put_delta(&b, c, 2);
	put(&b, SEP, 5);
	c[0] = del("x");
	put_delta(&b, c, 1);
	write_file("delta", "log-with-rejected-entry", &b);
	b.len = 0;

	/* many entries on two keys (rotations happen at input-chosen points) */
	for (i = 0; i < 20; i++)
	{
		char		v[8];

		snprintf(v, sizeof(v), "%zu", i);
		c[0] = (i % 3 == 2) ? del("p") : set("p", v);
		c[1] = (i % 4 == 3) ? del("q") : set("q", v);
		if (i > 0)
			put(&b, SEP, 5);
		put_delta(&b, c, 1 + (uint32_t) (i % 2));
	}
	write_file("delta", "log-twenty-entries", &b);
	b.len = 0;

	/* --- valid shape, rejected by apply: duplicate keys --- */
	c[0] = set("k", "1");
	c[1] = del("k");
	delta_file("dup-set-delete", c, 2);
	c[0] = set("", "1");
	c[1] = set("a", "2");
	c[2] = set("", "3");
	delta_file("dup-empty-key", c, 3);

	/* --- malformed, one file per error --- */
	raw_file("delta", "bad-empty", "", 0);
	raw_file("delta", "bad-version-0", "\x00\x00\x00\x00\x00", 5);
	raw_file("delta", "bad-version-2", "\x02\x00\x00\x00\x00", 5);
	raw_file("delta", "bad-truncated-header", "\x01\x01\x00", 3);
	raw_file("delta", "bad-huge-count", "\x01\xff\xff\xff\xff", 5);
	/* 10 million changes announced, two there (issue 14: room, not count) */
	raw_file("delta", "bad-count-beyond-bytes",
			 "\x01\x80\x96\x98\x00" "\x00\x00\x00\x00\xff\xff\xff\xff"
			 "\x01\x00\x00\x00" "a" "\x00\x00\x00\x00", 22);
	raw_file("delta", "bad-count-no-changes", "\x01\x01\x00\x00\x00", 5);
	raw_file("delta", "bad-trailing", "\x01\x00\x00\x00\x00\x00", 6);
	raw_file("delta", "bad-truncated-klen", "\x01\x01\x00\x00\x00\x01\x00", 7);
	/* klen 1025 */
	raw_file("delta", "bad-key-too-long",
			 "\x01\x01\x00\x00\x00\x01\x04\x00\x00", 9);
	/* klen 0xffffffff: too long, not a deletion marker */
	raw_file("delta", "bad-key-len-ffffffff",
			 "\x01\x01\x00\x00\x00\xff\xff\xff\xff", 9);
	/* klen 3, two key bytes */
	raw_file("delta", "bad-key-past-end",
			 "\x01\x01\x00\x00\x00\x03\x00\x00\x00" "ab", 11);
	raw_file("delta", "bad-truncated-vlen",
			 "\x01\x01\x00\x00\x00\x01\x00\x00\x00" "k" "\x01\x00", 12);
	/* vlen 0x40000000 */
	raw_file("delta", "bad-value-too-long",
			 "\x01\x01\x00\x00\x00\x01\x00\x00\x00" "k" "\x00\x00\x00\x40", 14);
	/* vlen 0xfffffffe: one below the deletion marker */
	raw_file("delta", "bad-value-len-fffffffe",
			 "\x01\x01\x00\x00\x00\x01\x00\x00\x00" "k" "\xfe\xff\xff\xff", 14);
	/* vlen 5, three value bytes */
	raw_file("delta", "bad-value-past-end",
			 "\x01\x01\x00\x00\x00\x01\x00\x00\x00" "k" "\x05\x00\x00\x00" "abc", 17);
	/* a good first change, a broken second one */
	c[0] = set("k1", "v1");
	put_delta(&b, c, 1);
	b.p[1] = 2;
	put_u32(&b, 2);
	put(&b, "k2", 2);
	put_u32(&b, 9);
	put(&b, "short", 5);
	write_file("delta", "bad-second-change-past-end", &b);
	b.len = 0;
	/* one change too many for the bytes: count 3, two changes */
	c[0] = set("a", "1");
	c[1] = del("b");
	put_delta(&b, c, 2);
	b.p[1] = 3;
	write_file("delta", "bad-count-above-changes", &b);
	b.len = 0;
	/* one change too few: count 1, two changes -> trailing bytes */
	put_delta(&b, c, 2);
	b.p[1] = 1;
	write_file("delta", "bad-count-below-changes", &b);
	b.len = 0;
	/* an empty entry between two separators, and a trailing separator */
	c[0] = set("a", "1");
	put_delta(&b, c, 1);
	put(&b, SEP, 5);
	put(&b, SEP, 5);
	put_u8(&b, 1);
	put_u32(&b, 0);
	put(&b, SEP, 5);
	write_file("delta", "log-empty-chunks", &b);

	free(b.p);
}

static void
gen_hash(void)
{
	uint8_t		ser[SLC_HASH_LEN];
	slc_hash	h;
	buf			b = {0};

	slc_hash_init(&h);
	slc_hash_serialize(&h, ser);
	raw_file("hash", "empty-state", ser, sizeof(ser));
	slc_hash_add(&h, SLC_NS_DATA, (const uint8_t *) "k1", 2,
				 (const uint8_t *) "v1", 2);
	slc_hash_serialize(&h, ser);
	raw_file("hash", "one-item", ser, sizeof(ser));
	ser[0] = 2;
	raw_file("hash", "bad-algo", ser, sizeof(ser));
	raw_file("hash", "bad-short", ser, sizeof(ser) - 1);
	raw_file("hash", "bad-empty", "", 0);

	/* a hash followed by items (ns, u16 klen, u16 vlen, key, value) */
	ser[0] = 1;
	put(&b, ser, sizeof(ser));
	put(&b, "\x01\x02\x00\x02\x00" "k1" "v1", 9);
	put(&b, "\x02\x02\x00\x10\x00" "c1" "0123456789abcdef", 23);
	/* an item of 5 + 200 + 307 = 512 bytes, the one-shot limit, and one more */
	put(&b, "\x01\xc8\x00\x33\x01", 5);
	{
		uint8_t		fill[600];

		memset(fill, 'x', sizeof(fill));
		put(&b, fill, 200 + 307);
		put(&b, "\x01\xc8\x00\x34\x01", 5);
		put(&b, fill, 200 + 308);
	}
	write_file("hash", "hash-and-items", &b);
	free(b.p);
}

int
main(int argc, char **argv)
{
	if (argc != 2)
	{
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	outdir = argv[1];
	mkdir_p("delta");
	mkdir_p("hash");
	gen_delta();
	gen_hash();
	return 0;
}
