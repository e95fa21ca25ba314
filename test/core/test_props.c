/*
 * test_props.c
 *
 * Property tests of src/core: for random logs of random deltas (a
 * deterministic PRNG, several seeds; keys from a small space so overwrites
 * and deletes are common; random client ids and seqs for watermarks,
 * retire entries among them):
 *
 *  fold_agrees       folding every entry in one pass, folding with
 *                    rotations in between (the state's items copied into a
 *                    fresh state, and folding continues there), and folding
 *                    each delta shuffled and split into several entries all
 *                    agree, at every step, with a from-scratch recomputation:
 *                    slc_state_rehash, and slc_hash_add over a plain array
 *                    model of key -> value that does not use the state map.
 *                    Malformed and duplicate-key entries change nothing.
 *                    (The server's own fold, compact.c, is not copied
 *                    here: test_rotation.c drives it through SQL against
 *                    the forward fold.)
 *  hash_independent  at every rotation, the model's hash recomputed without
 *                    the core at all (XXH3_128bits over ns || u32le klen ||
 *                    key || value, summed mod 2^128) equals the state's.
 *
 * Sizes: SLC_PROP_SEEDS (default 64) seeds of SLC_PROP_STEPS (default 8000)
 * entries; SLC_PROP_SEED=N starts at seed N (to replay a failure, with
 * SLC_PROP_SEEDS=1).  The valgrind target runs fewer.  Prints one line per
 * test and a closing "props: N passed, M failed"; exits non-zero on failure.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "synclog_core.h"

/* ---------------------------------------------------------------------
 * Harness
 * ---------------------------------------------------------------------
 */
static int	test_failures;
static unsigned long cur_seed;
static int	cur_step;

/* Report at most a few failures per test; one broken fold breaks many steps. */
#define CHECK(cond) \
	do { \
		if (!(cond)) \
			check_failed(__FILE__, __LINE__, #cond); \
	} while (0)

static void
check_failed(const char *file, int line, const char *what)
{
	if (test_failures < 5)
		fprintf(stderr, "    %s:%d: seed %lu step %d: check failed: %s\n",
				file, line, cur_seed, cur_step, what);
	test_failures++;
}

static void *
xmalloc(size_t n)
{
	void	   *p = malloc(n > 0 ? n : 1);

	if (p == NULL)
	{
		fprintf(stderr, "test_props: out of memory\n");
		exit(2);
	}
	return p;
}

/* xorshift64*: the same sequence on every platform. */
static uint64_t
rng_next(uint64_t *st)
{
	uint64_t	x = *st;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*st = x;
	return x * UINT64_C(2685821657736338717);
}

static uint32_t
rng_below(uint64_t *st, uint32_t n)
{
	return (uint32_t) (rng_next(st) % n);
}

static unsigned long
env_ulong(const char *name, unsigned long dflt)
{
	const char *v = getenv(name);
	char	   *end;
	unsigned long n;

	if (v == NULL || *v == '\0')
		return dflt;
	n = strtoul(v, &end, 10);
	return (*end == '\0') ? n : dflt;
}

static unsigned long n_seeds;
static unsigned long n_steps;
static unsigned long first_seed;

/* ---------------------------------------------------------------------
 * Key space, values, the model
 * ---------------------------------------------------------------------
 */
#define N_KEYS		40
#define N_CLIENTS	4
#define VAL_MAX		700			/* some items cross the 512-byte one-shot hash */

static uint8_t key_bytes[N_KEYS][SLC_KEY_MAX];
static size_t key_len[N_KEYS];

static const char *const client_ids[N_CLIENTS] = {
	"c1", "c2", "", "a-client-id-that-is-rather-longer-than-the-others"
};

/*
 * Keys: the empty key, short keys sharing prefixes, keys with NUL and high
 * bytes, keys equal to a client id (other namespace), long keys up to the
 * 1024-byte limit.
 */
static void
init_keys(void)
{
	static const char *const fixed[] = {
		"", "a", "b", "ab", "ba", "abc", "k1", "k2", "k10", "c1", "c2",
		"x", "xx", "xxx", "key", "key ", "KEY"
	};
	size_t		nf = sizeof(fixed) / sizeof(fixed[0]);
	size_t		i;
	size_t		b;
	uint64_t	rng = UINT64_C(0x0123456789ABCDEF);

	for (i = 0; i < nf; i++)
	{
		key_len[i] = strlen(fixed[i]);
		memcpy(key_bytes[i], fixed[i], key_len[i]);
	}
	for (; i < N_KEYS; i++)
	{
		switch (i % 4)
		{
			case 0:
				key_len[i] = 1 + rng_below(&rng, 4);	/* binary, NULs */
				for (b = 0; b < key_len[i]; b++)
					key_bytes[i][b] = (uint8_t) ("\0\x01\xff"[rng_below(&rng, 3)]);
				break;
			case 1:
				key_len[i] = 5 + rng_below(&rng, 40);
				for (b = 0; b < key_len[i]; b++)
					key_bytes[i][b] = (uint8_t) rng_next(&rng);
				break;
			case 2:
				key_len[i] = 400 + rng_below(&rng, 200);
				for (b = 0; b < key_len[i]; b++)
					key_bytes[i][b] = (uint8_t) ('a' + b % 26);
				key_bytes[i][key_len[i] - 1] = (uint8_t) i;
				break;
			default:
				key_len[i] = SLC_KEY_MAX - rng_below(&rng, 2);
				memset(key_bytes[i], 'K', key_len[i]);
				key_bytes[i][0] = (uint8_t) i;
		}
	}
	/* keys must be distinct for the model to be a map */
	for (i = 0; i < N_KEYS; i++)
		for (b = i + 1; b < N_KEYS; b++)
			if (key_len[i] == key_len[b] &&
				memcmp(key_bytes[i], key_bytes[b], key_len[i]) == 0)
			{
				fprintf(stderr, "test_props: keys %zu and %zu collide\n", i, b);
				exit(2);
			}
}

/* Index of a key in the key space, or -1. */
static int
key_index(const uint8_t *key, size_t klen)
{
	int			i;

	for (i = 0; i < N_KEYS; i++)
		if (key_len[i] == klen && (klen == 0 || memcmp(key_bytes[i], key, klen) == 0))
			return i;
	return -1;
}

static int
client_index(const uint8_t *id, size_t len)
{
	int			i;

	for (i = 0; i < N_CLIENTS; i++)
		if (strlen(client_ids[i]) == len &&
			(len == 0 || memcmp(client_ids[i], id, len) == 0))
			return i;
	return -1;
}

typedef struct
{
	int			present;
	size_t		vlen;
	uint8_t		val[VAL_MAX];
} model_slot;

/* The state as plain arrays: what the fold must produce. */
typedef struct
{
	model_slot	data[N_KEYS];
	model_slot	client[N_CLIENTS];
} model;

static void
slot_set(model_slot *m, const uint8_t *val, size_t vlen)
{
	if (val == NULL)
	{
		m->present = 0;
		m->vlen = 0;
		return;
	}
	m->present = 1;
	m->vlen = vlen;
	if (vlen > 0)
		memcpy(m->val, val, vlen);
}

/* The model's hash with slc_hash_add, item by item. */
static void
model_hash(const model *m, slc_hash *h)
{
	int			i;

	slc_hash_init(h);
	for (i = 0; i < N_KEYS; i++)
		if (m->data[i].present)
			slc_hash_add(h, SLC_NS_DATA, key_bytes[i], key_len[i],
						 m->data[i].val, m->data[i].vlen);
	for (i = 0; i < N_CLIENTS; i++)
		if (m->client[i].present)
			slc_hash_add(h, SLC_NS_CLIENT, (const uint8_t *) client_ids[i],
						 strlen(client_ids[i]), m->client[i].val,
						 m->client[i].vlen);
}

static size_t
model_count(const model *m)
{
	size_t		n = 0;
	int			i;

	for (i = 0; i < N_KEYS; i++)
		n += m->data[i].present;
	for (i = 0; i < N_CLIENTS; i++)
		n += m->client[i].present;
	return n;
}

/* PROTOCOL.md section 11 done by hand: no slc_* hash code involved. */
static void
manual_item(slc_hash *h, uint8_t ns, const uint8_t *key, size_t klen,
			const uint8_t *val, size_t vlen)
{
	uint8_t    *buf = xmalloc(5 + klen + vlen);
	XXH128_hash_t d;
	uint64_t	lo;

	buf[0] = ns;
	buf[1] = (uint8_t) klen;
	buf[2] = (uint8_t) (klen >> 8);
	buf[3] = (uint8_t) (klen >> 16);
	buf[4] = (uint8_t) (klen >> 24);
	if (klen > 0)
		memcpy(buf + 5, key, klen);
	if (vlen > 0)
		memcpy(buf + 5 + klen, val, vlen);
	d = XXH3_128bits(buf, 5 + klen + vlen);
	free(buf);
	lo = h->sum_lo + d.low64;
	h->sum_hi += d.high64 + (lo < d.low64 ? 1 : 0);
	h->sum_lo = lo;
	h->count++;
	h->bytes += klen + vlen;
}

static void
model_hash_manual(const model *m, slc_hash *h)
{
	int			i;

	memset(h, 0, sizeof(*h));
	for (i = 0; i < N_KEYS; i++)
		if (m->data[i].present)
			manual_item(h, SLC_NS_DATA, key_bytes[i], key_len[i],
						m->data[i].val, m->data[i].vlen);
	for (i = 0; i < N_CLIENTS; i++)
		if (m->client[i].present)
			manual_item(h, SLC_NS_CLIENT, (const uint8_t *) client_ids[i],
						strlen(client_ids[i]), m->client[i].val,
						m->client[i].vlen);
}

/* ---------------------------------------------------------------------
 * Random logs
 * ---------------------------------------------------------------------
 */
#define MAX_CHANGES	10

typedef struct
{
	uint8_t    *delta;			/* exact-length encoding */
	size_t		len;
	int64_t		lsn;
	int			client;			/* -1: none */
	int64_t		seq;
} log_entry;

/* Per-seed shape, so seeds differ in more than their bytes. */
typedef struct
{
	int			n_keys;			/* keys in play: 1..N_KEYS */
	uint32_t	del_pct;		/* chance of a deletion per change */
	uint32_t	rot_every;		/* mean entries between rotations */
	uint32_t	max_changes;
} log_shape;

static void
shape_for(uint64_t *rng, log_shape *sh)
{
	static const int key_choices[] = {1, 2, 3, 5, 8, 12, 20, N_KEYS};

	sh->n_keys = key_choices[rng_below(rng, 8)];
	sh->del_pct = 5 + rng_below(rng, 50);
	sh->rot_every = 3 + rng_below(rng, 60);
	sh->max_changes = 1 + rng_below(rng, MAX_CHANGES);
	if (sh->max_changes > (uint32_t) sh->n_keys)
		sh->max_changes = (uint32_t) sh->n_keys;
}

static void
random_value(uint64_t *rng, uint8_t *val, uint32_t *vlen)
{
	uint32_t	r = rng_below(rng, 100);
	uint32_t	i;

	if (r < 70)
	{
		/* short, from a tiny alphabet: rewriting the same value is common */
		*vlen = rng_below(rng, 4);
		for (i = 0; i < *vlen; i++)
			val[i] = (uint8_t) ("ab\0\xff"[rng_below(rng, 4)]);
	}
	else if (r < 96)
	{
		*vlen = 4 + rng_below(rng, 60);
		for (i = 0; i < *vlen; i++)
			val[i] = (uint8_t) rng_next(rng);
	}
	else
	{
		*vlen = 400 + rng_below(rng, VAL_MAX - 400);
		memset(val, 'v', *vlen);
		val[rng_below(rng, *vlen)] = (uint8_t) rng_next(rng);
	}
}

static uint8_t *
encode_exact(const slc_change *c, uint32_t n, size_t *len)
{
	size_t		size = slc_delta_encoded_size(c, n);
	uint8_t    *buf = xmalloc(size);

	*len = slc_delta_encode(c, n, buf);
	return buf;
}

static int64_t
random_seq(uint64_t *rng)
{
	switch (rng_below(rng, 12))
	{
		case 0:
			return INT64_MIN;
		case 1:
			return INT64_MAX;
		case 2:
			return -(int64_t) rng_below(rng, 1000);
		case 3:
			return SLC_RETIRE_SEQ;	/* a retire entry */
		default:
			return (int64_t) rng_below(rng, 1000000);
	}
}

/* One random valid entry; keys distinct within the delta. */
static void
random_entry(uint64_t *rng, const log_shape *sh, int64_t lsn, log_entry *e,
			 uint8_t (*vals)[VAL_MAX])
{
	slc_change	c[MAX_CHANGES];
	int			used[N_KEYS];
	uint32_t	m = rng_below(rng, sh->max_changes + 1);
	uint32_t	j;

	memset(used, 0, sizeof(used));
	for (j = 0; j < m; j++)
	{
		int			k;

		do
			k = (int) rng_below(rng, (uint32_t) sh->n_keys);
		while (used[k]);
		used[k] = 1;
		memset(&c[j], 0, sizeof(c[j]));
		c[j].key = key_bytes[k];
		c[j].klen = (uint32_t) key_len[k];
		if (rng_below(rng, 100) < sh->del_pct)
			c[j].is_delete = 1;
		else
		{
			random_value(rng, vals[j], &c[j].vlen);
			c[j].val = vals[j];
		}
	}
	e->delta = encode_exact(c, m, &e->len);
	e->lsn = lsn;
	e->client = rng_below(rng, 4) == 0 ? -1 : (int) rng_below(rng, N_CLIENTS);
	e->seq = random_seq(rng);
}

static slc_status
apply(slc_state *s, const log_entry *e)
{
	const char *id = e->client >= 0 ? client_ids[e->client] : NULL;

	return slc_state_apply_entry(s, e->delta, e->len, e->lsn, id,
								 id ? strlen(id) : 0, e->seq);
}

/* The model after one entry: the reference fold, on arrays. */
static void
model_apply(model *m, const log_entry *e)
{
	slc_delta_reader r;
	slc_change	c;
	int			more;

	if (slc_delta_reader_init(&r, e->delta, e->len, UINT32_MAX) != SLC_OK)
		abort();
	for (;;)
	{
		int			k;

		if (slc_delta_next(&r, &c, &more, NULL) != SLC_OK)
			abort();
		if (!more)
			break;
		k = key_index(c.key, c.klen);
		if (k < 0)
			abort();
		slot_set(&m->data[k], c.is_delete ? NULL : c.val, c.vlen);
	}
	if (e->client >= 0 && e->seq == SLC_RETIRE_SEQ)
		slot_set(&m->client[e->client], NULL, 0);
	else if (e->client >= 0)
	{
		uint8_t		wm[SLC_WATERMARK_LEN];

		slc_watermark_encode(e->seq, e->lsn, wm);
		slot_set(&m->client[e->client], wm, sizeof(wm));
	}
}

static void
free_log(log_entry *log, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
		free(log[i].delta);
	free(log);
}

/*
 * A log of n_steps random entries for a seed, and its shape.  The log is
 * generated up front so every test replays the same one.
 */
static log_entry *
make_log(unsigned long seed, log_shape *sh, uint64_t *rng)
{
	log_entry  *log = xmalloc(sizeof(log_entry) * (n_steps > 0 ? n_steps : 1));
	uint8_t		vals[MAX_CHANGES][VAL_MAX];
	int64_t		lsn = 0;
	unsigned long i;

	*rng = UINT64_C(0x9E3779B97F4A7C15) ^ (seed * UINT64_C(0x100000001B3) + 1);
	(void) rng_next(rng);
	shape_for(rng, sh);
	for (i = 0; i < n_steps; i++)
	{
		lsn += 1 + rng_below(rng, 3);
		random_entry(rng, sh, lsn, &log[i], vals);
	}
	return log;
}

/* ---------------------------------------------------------------------
 * State helpers
 * ---------------------------------------------------------------------
 */
static int
copy_visit(void *arg, uint8_t ns, const uint8_t *key, size_t klen,
		   const uint8_t *val, size_t vlen)
{
	return slc_state_put((slc_state *) arg, ns, key, klen, val, vlen) != SLC_OK;
}

/* A rotation: a fresh state holding the snapshot (the state's items). */
static slc_state *
rotate(slc_state *s)
{
	slc_state  *c = slc_state_new();

	if (c == NULL || slc_state_foreach(s, copy_visit, c) != 0)
	{
		fprintf(stderr, "test_props: out of memory\n");
		exit(2);
	}
	slc_state_free(s);
	return c;
}

typedef struct
{
	const model *m;
	int			mismatches;
	size_t		seen;
} cmp_arg;

/* Every item of the state is in the model with the same value. */
static int
cmp_visit(void *arg, uint8_t ns, const uint8_t *key, size_t klen,
		  const uint8_t *val, size_t vlen)
{
	cmp_arg    *a = arg;
	const model_slot *slot = NULL;
	int			k;

	a->seen++;
	if (ns == SLC_NS_DATA && (k = key_index(key, klen)) >= 0)
		slot = &a->m->data[k];
	else if (ns == SLC_NS_CLIENT && (k = client_index(key, klen)) >= 0)
		slot = &a->m->client[k];
	if (slot == NULL || !slot->present || slot->vlen != vlen ||
		(vlen > 0 && memcmp(slot->val, val, vlen) != 0))
		a->mismatches++;
	return 0;
}

/* The state holds exactly the model's items and its hashes agree. */
static int
state_matches(const slc_state *s, const model *m, const slc_hash *mh)
{
	cmp_arg		a = {m, 0, 0};
	slc_hash	re;

	slc_state_rehash(s, &re);
	(void) slc_state_foreach(s, cmp_visit, &a);
	return a.mismatches == 0 && a.seen == model_count(m) &&
		slc_state_count(s) == model_count(m) &&
		slc_hash_equal(&re, slc_state_hash(s)) &&
		slc_hash_equal(mh, slc_state_hash(s));
}

/* ---------------------------------------------------------------------
 * fold_agrees
 * ---------------------------------------------------------------------
 */

/* A malformed or duplicate-key variant of e (caller frees). */
static uint8_t *
bad_variant(uint64_t *rng, const log_entry *e, size_t *len, slc_status *want)
{
	uint8_t    *p;

	switch (rng_below(rng, 4))
	{
		case 0:
			/* duplicate key: the first change twice, or two deletes of "" */
			{
				slc_change	c[2];

				memset(c, 0, sizeof(c));
				c[0].key = key_bytes[0];
				c[0].klen = (uint32_t) key_len[0];
				c[0].is_delete = 1;
				c[1] = c[0];
				c[1].is_delete = 0;
				c[1].val = (const uint8_t *) "v";
				c[1].vlen = 1;
				*want = SLC_ERR_DUPLICATE_KEY;
				return encode_exact(c, 2, len);
			}
		case 1:
			/* one byte short */
			if (e->len > SLC_DELTA_HEADER_LEN)
			{
				*len = e->len - 1;
				p = xmalloc(*len);
				memcpy(p, e->delta, *len);
				*want = SLC_ERR_LENGTH;	/* or TRUNCATED; checked loosely */
				return p;
			}
			/* FALLTHROUGH */
		case 2:
			/* a trailing byte */
			*len = e->len + 1;
			p = xmalloc(*len);
			memcpy(p, e->delta, e->len);
			p[e->len] = 0;
			*want = SLC_ERR_TRAILING;
			return p;
		default:
			/* version 2 */
			*len = e->len;
			p = xmalloc(*len);
			memcpy(p, e->delta, e->len);
			p[0] = 2;
			*want = SLC_ERR_VERSION;
			return p;
	}
}

/*
 * Apply e to s as several entries: its changes shuffled and split into
 * 1..3 deltas, the watermark with the last.  Keys are unique within a
 * delta, so this must fold to the same state.
 */
static slc_status
apply_split(slc_state *s, const log_entry *e, uint64_t *rng)
{
	slc_change	c[MAX_CHANGES];
	slc_change	one;
	slc_delta_reader r;
	uint32_t	n = 0;
	uint32_t	parts = 1 + rng_below(rng, 3);
	uint32_t	p;
	uint32_t	from = 0;
	int			more;
	uint32_t	i;

	if (slc_delta_reader_init(&r, e->delta, e->len, MAX_CHANGES) != SLC_OK)
		return SLC_ERR_TOO_MANY;
	while (slc_delta_next(&r, &one, &more, NULL) == SLC_OK && more)
		c[n++] = one;
	for (i = n; i > 1; i--)
	{
		uint32_t	j = rng_below(rng, i);
		slc_change	t = c[i - 1];

		c[i - 1] = c[j];
		c[j] = t;
	}
	for (p = 0; p < parts; p++)
	{
		uint32_t	to = (p + 1 == parts) ? n : from + rng_below(rng, n - from + 1);
		log_entry	sub;
		slc_status	st;

		sub.delta = encode_exact(c + from, to - from, &sub.len);
		sub.lsn = e->lsn;
		sub.client = (p + 1 == parts) ? e->client : -1;
		sub.seq = e->seq;
		st = apply(s, &sub);
		free(sub.delta);
		if (st != SLC_OK)
			return st;
		from = to;
	}
	return SLC_OK;
}

static void
fold_agrees_seed(unsigned long seed, unsigned long *rotations,
				 unsigned long *rejected)
{
	log_shape	sh;
	uint64_t	rng;
	log_entry  *log = make_log(seed, &sh, &rng);
	model	   *m = xmalloc(sizeof(model));
	slc_state  *one = slc_state_new();	/* one pass */
	slc_state  *rot = slc_state_new();	/* with rotations */
	slc_state  *split = slc_state_new();	/* shuffled, split entries */
	slc_hash	mh;
	unsigned long i;

	if (one == NULL || rot == NULL || split == NULL)
		exit(2);
	memset(m, 0, sizeof(model));
	cur_seed = seed;
	for (i = 0; i < n_steps; i++)
	{
		const log_entry *e = &log[i];

		cur_step = (int) i;
		CHECK(apply(one, e) == SLC_OK);
		CHECK(apply(rot, e) == SLC_OK);
		CHECK(apply_split(split, e, &rng) == SLC_OK);
		model_apply(m, e);
		model_hash(m, &mh);

		/* the incremental hash, at every step, against both recomputations */
		CHECK(state_matches(one, m, &mh));
		CHECK(slc_hash_equal(slc_state_hash(rot), &mh));
		CHECK(slc_hash_equal(slc_state_hash(split), &mh));
		CHECK(slc_state_count(rot) == model_count(m));
		CHECK(slc_state_count(split) == model_count(m));

		/* a bad entry now and then: rejected, nothing changes */
		if (rng_below(&rng, 20) == 0)
		{
			size_t		blen = 0;
			slc_status	want;
			uint8_t    *bad = bad_variant(&rng, e, &blen, &want);
			slc_status	st;

			st = slc_state_apply_entry(one, bad, blen, e->lsn + 1, "c1", 2, 5);
			if (want == SLC_ERR_LENGTH)
				CHECK(st == SLC_ERR_LENGTH || st == SLC_ERR_TRUNCATED);
			else
				CHECK(st == want);
			CHECK(state_matches(one, m, &mh));
			free(bad);
			(*rejected)++;
		}

		if (rng_below(&rng, sh.rot_every) == 0)
		{
			rot = rotate(rot);
			CHECK(state_matches(rot, m, &mh));
			(*rotations)++;
		}
	}
	CHECK(state_matches(rot, m, &mh));
	CHECK(state_matches(split, m, &mh));

	/* serialized hashes of the three folds are byte-identical */
	{
		uint8_t		a[SLC_HASH_LEN];
		uint8_t		b[SLC_HASH_LEN];
		slc_hash	back;

		slc_hash_serialize(slc_state_hash(one), a);
		slc_hash_serialize(slc_state_hash(rot), b);
		CHECK(memcmp(a, b, sizeof(a)) == 0);
		CHECK(slc_hash_parse(a, sizeof(a), &back) == SLC_OK);
		CHECK(slc_hash_equal(&back, &mh));
	}

	slc_state_free(one);
	slc_state_free(rot);
	slc_state_free(split);
	free(m);
	free_log(log, n_steps);
}

static void
test_fold_agrees(void)
{
	unsigned long rotations = 0;
	unsigned long rejected = 0;
	unsigned long s;

	for (s = first_seed; s < first_seed + n_seeds && test_failures == 0; s++)
		fold_agrees_seed(s, &rotations, &rejected);
	if (n_seeds > 0 && n_steps >= 1000)
	{
		CHECK(rotations > n_seeds);
		CHECK(rejected > n_seeds);
	}
	fprintf(stderr, "    %lu seeds x %lu entries, %lu rotations, %lu bad entries rejected\n",
			n_seeds, n_steps, rotations, rejected);
}

/* ---------------------------------------------------------------------
 * hash_independent
 * ---------------------------------------------------------------------
 */

/*
 * At every rotation point of a random log, the model's hash recomputed
 * without the core at all equals the one slc_hash_add gives and the
 * state's own.  (The server's fold itself is checked against the core's
 * forward fold through SQL, by test_rotation.c.)
 */
static void
independent_seed(unsigned long seed)
{
	log_shape	sh;
	uint64_t	rng;
	log_entry  *log = make_log(seed, &sh, &rng);
	model	   *m = xmalloc(sizeof(model));
	slc_state  *s = slc_state_new();
	unsigned long i;

	if (s == NULL)
		exit(2);
	memset(m, 0, sizeof(model));
	cur_seed = seed;
	for (i = 0; i < n_steps; i++)
	{
		cur_step = (int) i;
		CHECK(apply(s, &log[i]) == SLC_OK);
		model_apply(m, &log[i]);
		if (rng_below(&rng, sh.rot_every) == 0 || i + 1 == n_steps)
		{
			slc_hash	mh;
			slc_hash	indep;

			model_hash(m, &mh);
			model_hash_manual(m, &indep);
			CHECK(slc_hash_equal(&indep, &mh));
			CHECK(slc_hash_equal(&indep, slc_state_hash(s)));
			s = rotate(s);
		}
	}
	slc_state_free(s);
	free(m);
	free_log(log, n_steps);
}

static void
test_hash_independent(void)
{
	unsigned long s;

	/* fewer seeds: this is about the hash, not the fold */
	for (s = first_seed; s < first_seed + (n_seeds + 3) / 4 && test_failures == 0; s++)
		independent_seed(s);
}

/* ---------------------------------------------------------------------
 * Runner
 * ---------------------------------------------------------------------
 */
static const struct
{
	const char *name;
	void		(*fn) (void);
}			tests[] =
{
	{"fold_agrees", test_fold_agrees},
	{"hash_independent", test_hash_independent},
};

int
main(void)
{
	size_t		i;
	int			passed = 0;
	int			failed = 0;

	n_seeds = env_ulong("SLC_PROP_SEEDS", 64);
	n_steps = env_ulong("SLC_PROP_STEPS", 8000);
	first_seed = env_ulong("SLC_PROP_SEED", 1);
	init_keys();

	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
	{
		test_failures = 0;
		tests[i].fn();
		if (test_failures == 0)
		{
			printf("ok   %s\n", tests[i].name);
			passed++;
		}
		else
		{
			printf("FAIL %s (%d checks failed; replay with SLC_PROP_SEED=%lu SLC_PROP_SEEDS=1)\n",
				   tests[i].name, test_failures, cur_seed);
			failed++;
		}
		fflush(stdout);
	}
	printf("props: %d passed, %d failed\n", passed, failed);
	return failed > 0 ? 1 : 0;
}
