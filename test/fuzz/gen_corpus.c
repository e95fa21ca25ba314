/*
 * gen_corpus.c
 *
 * Writes the seed corpus of the fuzz targets: `make corpus` regenerates
 * test/fuzz/corpus/ from this file (the files are committed, so CI does
 * not need to run it).  Valid deltas are built with slc_delta_encode;
 * malformed ones by hand, one file per error shape; several entries in one
 * file are joined with the separator "|SLC|" that fuzz_delta splits on.
 *
 * usage: gen_corpus DIR     (creates DIR/delta/, DIR/hash/ and DIR/zip/)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "synclog_core.h"
#include "synclog_zip.h"

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

/* A file from hex (the compressed vectors and hand-made frames). */
static void
hex_file(const char *sub, const char *name, const char *hex)
{
	buf			b = {0};

	for (size_t i = 0; hex[i] != '\0' && hex[i + 1] != '\0'; i += 2)
	{
		unsigned int v;

		if (sscanf(hex + i, "%2x", &v) != 1)
		{
			errno = EINVAL;
			die(name);
		}
		put_u8(&b, (uint8_t) v);
	}
	write_file(sub, name, &b);
	free(b.p);
}

/* The envelope of changes[0..n), compressed by the core's encoder. */
static void
zip_file(const char *name, const slc_change *c, uint32_t n)
{
	buf			d = {0};
	buf			z = {0};
	size_t		len;

	put_delta(&d, c, n);
	z.cap = slc_zip_bound(d.len);
	z.p = malloc(z.cap);
	if (z.p == NULL)
		die("malloc");
	len = slc_zip_encode(NULL, d.p, d.len, z.p, z.cap);
	if (len == 0)
	{
		errno = EINVAL;
		die(name);
	}
	z.len = len;
	write_file("zip", name, &z);
	/* and the version 1 delta itself, for the encoder's round trip */
	write_file("zip", name + 4, &d);
	free(d.p);
	free(z.p);
}

/*
 * Seeds of fuzz_zip: the vectors of PROTOCOL.md 14 (l), envelopes made by
 * the encoder (and their version 1 deltas), one file per refusal, bombs.
 * The hand-made frames are explained in test/core/test_zip.c.
 */
static void
gen_zip(void)
{
	static const char f1[] = "0102000000020000006b31020000007631020000006b32ffffffff";
	char		hex[512];
	uint8_t		page[3][4096];
	uint8_t		keys[3][4] = {{0, 0, 0, 1}, {0, 0, 0, 2}, {0, 0, 0, 9}};
	char		json[600] = "";
	slc_change	c[3];

	hex_file("zip", "vector-j1-page", "02021110000028b52ffd60110fb5000068010100000004000100100000ab0200fc07be08c008");
	hex_file("zip", "vector-j2-note", "02025101000028b52ffd605100050100c80101000000040000006e6f74654001000073796e636c6f67200100d54c2d63");
	snprintf(hex, sizeof(hex), "02021b00000028b52ffd201bd90000%s", f1);
	hex_file("zip", "vector-j3-raw-block", hex);

	/* three text-like pages, and a JSON record */
	for (int p = 0; p < 3; p++)
		for (int i = 0; i < 4096; i++)
			page[p][i] = i % 97 < 60 ? (uint8_t) "the page store keeps text "[(i + p) % 26] : 0;
	for (int p = 0; p < 3; p++)
		c[p] = setn(keys[p], 4, page[p], 4096);
	zip_file("zip-pages", c, 3);
	for (int i = 0; i < 8; i++)
		strcat(json, "{\"id\":12,\"title\":\"buy milk\",\"done\":false},");
	c[0] = set("todo/0012", json);
	c[1] = del("todo/0013");
	zip_file("zip-json", c, 2);

	/* refusals, one per file */
	hex_file("zip", "bad-truncated-header", "02021b0000");
	hex_file("zip", "bad-codec-1", "02011b00000028b52ffd201bd90000");
	hex_file("zip", "bad-codec-0", "02001b000000");
	hex_file("zip", "bad-raw-len-0", "020200000000");
	hex_file("zip", "bad-raw-len-huge", "0202ffffffff28b52ffd201bd90000");
	hex_file("zip", "bad-no-frame", "02021b000000");
	snprintf(hex, sizeof(hex), "02021c00000028b52ffd201bd90000%s", f1);
	hex_file("zip", "bad-raw-len-one-more", hex);
	snprintf(hex, sizeof(hex), "02021b00000028b52ffd201bd90000%s00", f1);
	hex_file("zip", "bad-trailing-byte", hex);
	snprintf(hex, sizeof(hex), "02021b00000028b52ffd201bd90000%s28b52ffd201bd90000%s", f1, f1);
	hex_file("zip", "bad-two-frames", hex);
	hex_file("zip", "bad-skippable-frame", "02021b000000502a4d180400000000000000");
	snprintf(hex, sizeof(hex), "02021400000028b52ffd0000d90000%s", f1);
	hex_file("zip", "bad-no-content-size-too-long", hex);
	snprintf(hex, sizeof(hex), "02021b00000028b52ffd0000d90000%s", f1);
	hex_file("zip", "no-content-size", hex);
	hex_file("zip", "bad-inner-truncated", "02021100000028b52ffd2011890000" "0102000000020000006b31020000007631");
	hex_file("zip", "bad-inner-version-2", "02020600000028b52ffd2006310000" "020206000000");
	hex_file("zip", "bad-inner-key-too-long", "02020900000028b52ffd2009490000" "010100000001040000");
	/* bombs: 512 KiB of zeros from 25 bytes, above the 64 KiB limit; and
	 * the same frame announcing 1 KiB */
	hex_file("zip", "bomb-512k", "02020000080028b52ffda000000800020010000200100002001000030010" "00");
	hex_file("zip", "bomb-512k-announced-1k", "02020004000028b52ffda000000800020010000200100002001000030010" "00");
	/* a frame header announcing 1 GiB for 27 bytes */
	snprintf(hex, sizeof(hex), "02021b00000028b52ffda000000040d90000%s", f1);
	hex_file("zip", "bad-frame-announces-1g", hex);
	/* version 1 deltas: one too small to compress, one of random bytes */
	hex_file("zip", "v1-small", f1);
	{
		buf			b = {0};
		uint8_t		rnd[1024];
		uint64_t	x = 88172645463325252ULL;

		for (int i = 0; i < 1024; i++)
		{
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			rnd[i] = (uint8_t) x;
		}
		c[0] = setn(keys[0], 4, rnd, sizeof(rnd));
		put_delta(&b, c, 1);
		write_file("zip", "v1-random", &b);
		free(b.p);
	}
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
	mkdir_p("zip");
	gen_delta();
	gen_hash();
	gen_zip();
	return 0;
}
