/*
 * apply_speed.c - the reference client's apply path, offline: what one
 * group of N changed pages costs the replica database (BENCHMARKS.md,
 * "Kept range hashes: what they cost the apply path").
 *
 *   apply_speed DIR GROUPS PAGES KEYS [nosync]
 *
 * Makes a replica in DIR (removed first) holding KEYS pages of 4 KiB
 * (keys 4 bytes big-endian, as a page store's), then applies GROUPS
 * groups of one entry changing PAGES distinct random pages each, with
 * slcli_store_apply_group (one SQLite transaction per group, fsync'ed
 * unless "nosync"), and prints the time and the bytes the process wrote
 * (/proc/self/io wchar: the database and its WAL) per group.  Built
 * against the library's sources of one tree, so two trees compare:
 *
 *   cc -O2 -Isrc/client -Isrc/core -I$(pg_config --includedir) -o apply_speed \
 *      test/bench/apply_speed.c src/client/client_*.c src/core/synclog_core.c \
 *      src/core/synclog_chain.c src/core/synclog_zip.c -lpq -lxxhash -lsqlite3 -lzstd
 *
 * Owns: nothing of the library.  Must never: be part of a test's pass/fail.
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <time.h>

#define PAGE		4096

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double
now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

/* Bytes the process has written so far (write calls, any file). */
static long long
written(void)
{
	FILE	   *f = fopen("/proc/self/io", "r");
	char		line[128];
	long long	v = -1;

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "wchar:", 6) == 0)
			v = atoll(line + 6);
	if (f)
		fclose(f);
	return v;
}

/* Apply one group setting pages keys[0..n-1] to val. */
static void
apply(slcl_client *c, uint8_t (*keys)[4], int n, const uint8_t *val, uint8_t *delta)
{
	slc_change	ch[256];
	slcli_entry e;

	for (int i = 0; i < n; i++)
	{
		ch[i].key = keys[i];
		ch[i].klen = 4;
		ch[i].val = val;
		ch[i].vlen = PAGE;
		ch[i].is_delete = 0;
	}
	memset(&e, 0, sizeof(e));
	e.lsn = c->cur.lsn + 1;
	e.delta = delta;
	e.dlen = slc_delta_encode(ch, (uint32_t) n, delta);
	if (slcli_store_apply_group(c, &e, 1, c->cur.log_id, e.lsn, NULL) != SLCL_OK)
	{
		fprintf(stderr, "apply: %s\n", c->err);
		exit(1);
	}
}

static void
put_key(uint8_t *k, uint32_t p)
{
	k[0] = (uint8_t) (p >> 24);
	k[1] = (uint8_t) (p >> 16);
	k[2] = (uint8_t) (p >> 8);
	k[3] = (uint8_t) p;
}

int
main(int argc, char **argv)
{
	slcl_options o;
	slcl_client *c = NULL;
	slc_hash	h;
	uint8_t		keys[256][4];
	uint8_t    *val = malloc(PAGE);
	uint8_t    *delta = malloc(256 * (PAGE + 64));
	char		cmd[1200];
	int			groups,
				pages,
				nkeys;
	double		t0;
	long long	w0;

	if (argc < 5 || (groups = atoi(argv[2])) < 1 || (pages = atoi(argv[3])) < 1 || pages > 256 ||
		(nkeys = atoi(argv[4])) < pages)
	{
		fprintf(stderr, "usage: apply_speed DIR GROUPS PAGES(1-256) KEYS [nosync]\n");
		return 2;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", argv[1]);
	if (system(cmd) != 0 || val == NULL || delta == NULL)
		return 1;
	slcl_options_init(&o);
	o.doc = "apply";
	o.dir = argv[1];
	o.client_id = "apply";
	if (slcl_open(&o, &c) != SLCL_OK)
	{
		fprintf(stderr, "open: %s\n", slcl_open_error());
		return 1;
	}
	if (argc > 5 && strcmp(argv[5], "nosync") == 0)
		(void) sqlite3_exec(c->db, "PRAGMA synchronous = OFF", NULL, NULL, NULL);
	slc_hash_init(&h);
	if (slcli_store_begin(c) != SLCL_OK ||
		slcli_store_install(c, slcli_store_new_gen(c), "0123456789abcdef0123456789abcdef", 0, NULL, &h) != SLCL_OK ||
		slcli_store_commit(c) != SLCL_OK)
	{
		fprintf(stderr, "install: %s\n", c->err);
		return 1;
	}
	/* the state: every page, 256 a group */
	for (int k = 0; k < nkeys; k += 256)
	{
		int			n = nkeys - k < 256 ? nkeys - k : 256;

		for (int i = 0; i < PAGE; i++)
			val[i] = (uint8_t) next_rand();
		for (int i = 0; i < n; i++)
			put_key(keys[i], (uint32_t) (k + i));
		apply(c, keys, n, val, delta);
	}
	t0 = now_s();
	w0 = written();
	for (int g = 0; g < groups; g++)
	{
		int			n = 0;

		while (n < pages)
		{
			uint32_t	p = (uint32_t) (next_rand() % (uint64_t) nkeys);
			int			dup = 0;

			put_key(keys[n], p);
			for (int i = 0; i < n; i++)
				dup |= memcmp(keys[i], keys[n], 4) == 0;
			n += !dup;
		}
		val[next_rand() % PAGE] ^= 1;
		apply(c, keys, n, val, delta);
	}
	{
		double		t = now_s() - t0;

		printf("%d groups of %d pages on %d keys: %.3f s, %.1f us/group, %.1f KiB written/group\n",
			   groups, pages, nkeys, t, t * 1e6 / groups, (double) (written() - w0) / 1024.0 / groups);
	}
	slcl_close(c);
	free(val);
	free(delta);
	return 0;
}
