/*
 * test_repair.c
 *
 * Offline tests of what a catch-up or range repair does to the replica
 * database (client_repair.c), no server needed:
 *  1. range hashes: after a seeded random run of groups (sets, deletes,
 *     watermarks, retires), the range hashes computed from the rows equal
 *     per bucket the ones kept incrementally here change by change, and
 *     they add up to the running hash; a value damaged in place shows as
 *     exactly its own bucket;
 *  2. the swap: staged rows (sets, deletions, an unchanged item, a
 *     watermark) replace the live items in one transaction, only when the
 *     result's hash is the target's (a wrong target changes nothing);
 *     readers see the old state until the swap commits; from the empty
 *     state it installs a new generation;
 *  3. kill -9 in the swap (at "repair-staged", verified, not committed):
 *     reopened, the old state is there, readable, with the job and its
 *     stage; the resumed swap ends at the target;
 *  4. the kept range hashes (the bucket table): after every step of a
 *     seeded random run of applies (watermarks and their retires
 *     included), downloads, catch-up swaps, range repair swaps (with local
 *     items the server lacks) and retires of generations, the stored rows
 *     equal the range hashes recomputed from the live items, and no other
 *     generation has any; a replica without them (an older one) gets
 *     them from its items (at its first change, or from the open check's
 *     pass); a job table of the layout before repairs at the head is
 *     replaced on open (its job given up); the open check's range hashes
 *     of the values show a damaged row as its bucket alone.
 *
 * Owns: these checks.  Must never: need a server.
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static int	failures;
static int	checks;
static int	kill_at_debug;

#define CHECK(cond, ...) do { \
	checks++; \
	if (!(cond)) { \
		failures++; \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
	} \
} while (0)

#define LOG1 "0123456789abcdef0123456789abcdef"
#define LOG2 "fedcba9876543210fedcba9876543210"

static uint64_t rng = 0x2545f4914f6cdd1dULL;	/* the seed: runs are repeatable */

static uint32_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t) (rng >> 11);
}

static void
on_event(void *arg, const slcl_event *ev)
{
	(void) arg;
	if (ev->type == SLCL_EV_DEBUG && kill_at_debug)
		raise(SIGKILL);
}

static slcl_client *
open_dir(const char *dir, const char *debug_point)
{
	slcl_options o;
	slcl_client *c = NULL;

	slcl_options_init(&o);
	o.doc = "rdoc";
	o.dir = dir;
	o.client_id = "tester";
	o.on_event = on_event;
	o.debug_point = debug_point;
	if (slcl_open(&o, &c) != SLCL_OK)
	{
		fprintf(stderr, "slcl_open(%s): %s\n", dir, slcl_open_error());
		exit(1);
	}
	return c;
}

static void
rm_rf(const char *dir)
{
	char		cmd[2048];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		exit(1);
}

/* The incremental range hashes of the test: one change of (ns, key). */
static void
track(slc_hash *rh, const slc_state *ref, uint8_t ns, const uint8_t *k, size_t kl,
	  const uint8_t *v, size_t vl)
{
	const uint8_t *ov;
	size_t		ovl;
	slc_hash   *b = &rh[slc_bucket(ns, k, kl)];

	if (slc_state_get(ref, ns, k, kl, &ov, &ovl))
		slc_hash_remove(b, ns, k, kl, ov, ovl);
	if (v)
		slc_hash_add(b, ns, k, kl, v, vl);
}

/* A seeded random group of 1..3 entries applied to the replica, the
 * reference state and the incremental range hashes. */
static void
random_group(slcl_client *c, slc_state *ref, slc_hash *rh)
{
	int			n = 1 + (int) (next_rand() % 3);
	slcli_entry e[3];
	uint8_t		d[3][1024];

	for (int j = 0; j < n; j++)
	{
		int			nch = 1 + (int) (next_rand() % 4);
		slc_change	ch[4];
		uint8_t		keys[4][16];
		uint8_t		vals[4][40];
		int64_t		lsn = c->cur.lsn + 1 + j;
		int			wm = next_rand() % 3 == 0;
		const char *cid = wm ? (next_rand() % 2 ? "alice" : "bob") : NULL;
		int64_t		seq = wm && next_rand() % 7 == 0 ? SLC_RETIRE_SEQ : lsn;

		for (int i = 0; i < nch; i++)
		{
			/* distinct keys within an entry: key i from its own range */
			size_t		kl = (size_t) snprintf((char *) keys[i], sizeof(keys[i]), "key%d-%u", i,
											   next_rand() % 40);
			size_t		vl = (size_t) snprintf((char *) vals[i], sizeof(vals[i]), "v%lld.%u",
											   (long long) lsn, next_rand());

			ch[i].key = keys[i];
			ch[i].klen = (uint32_t) kl;
			ch[i].is_delete = next_rand() % 5 == 0;
			ch[i].val = ch[i].is_delete ? NULL : vals[i];
			ch[i].vlen = ch[i].is_delete ? 0 : (uint32_t) vl;
			track(rh, ref, SLC_NS_DATA, keys[i], kl, ch[i].val, ch[i].vlen);
			slc_state_put(ref, SLC_NS_DATA, keys[i], kl, ch[i].val, ch[i].vlen);
		}
		e[j].lsn = lsn;
		e[j].dlen = slc_delta_encode(ch, (uint32_t) nch, d[j]);
		e[j].delta = d[j];
		e[j].cid = cid;
		e[j].cidlen = cid ? strlen(cid) : 0;
		e[j].seq = seq;
		if (cid)
		{
			uint8_t		w[SLC_WATERMARK_LEN];

			slc_watermark_encode(seq, lsn, w);
			track(rh, ref, SLC_NS_CLIENT, (const uint8_t *) cid, strlen(cid),
				  seq == SLC_RETIRE_SEQ ? NULL : w, SLC_WATERMARK_LEN);
			slc_state_put(ref, SLC_NS_CLIENT, (const uint8_t *) cid, strlen(cid),
						  seq == SLC_RETIRE_SEQ ? NULL : w, SLC_WATERMARK_LEN);
		}
	}
	CHECK(slcli_store_apply_group(c, e, (size_t) n, c->cur.log_id, e[n - 1].lsn, NULL) == SLCL_OK,
		  "apply group: %s", c->err);
}

/* A new replica in base/name, at the empty state, and rh (SLC_BUCKETS) empty too. */
static void install_empty(slcl_client *c);

static slcl_client *
fresh_replica(const char *base, const char *name, slc_hash *rh, char *dir, size_t dirlen)
{
	slcl_client *c;

	snprintf(dir, dirlen, "%s/%s", base, name);
	rm_rf(dir);
	for (int b = 0; b < SLC_BUCKETS; b++)
		slc_hash_init(&rh[b]);
	c = open_dir(dir, NULL);
	install_empty(c);
	return c;
}

/* An empty state installed at (LOG1, 0). */
static void
install_empty(slcl_client *c)
{
	slc_hash	h;
	int64_t		gen;

	slc_hash_init(&h);
	CHECK(slcli_store_begin(c) == SLCL_OK, "begin: %s", c->err);
	gen = slcli_store_new_gen(c);
	CHECK(slcli_store_install(c, gen, LOG1, 0, NULL, &h) == SLCL_OK, "install: %s", c->err);
	CHECK(slcli_store_commit(c) == SLCL_OK, "commit: %s", c->err);
}

static int
differing(const slc_hash *a, const slc_hash *b, int *which)
{
	int			n = 0;

	for (int i = 0; i < SLC_BUCKETS; i++)
		if (!slc_hash_equal(&a[i], &b[i]))
		{
			n++;
			*which = i;
		}
	return n;
}

static void
test_range_hashes(const char *base)
{
	char		dir[1024];
	slcl_client *c;
	slc_state  *ref = slc_state_new();
	slc_hash   *rh = malloc(sizeof(slc_hash) * SLC_BUCKETS);
	slc_hash   *got = malloc(sizeof(slc_hash) * SLC_BUCKETS);
	slc_hash	total,
				sum;
	int			which = -1;
	sqlite3_stmt *s;

	c = fresh_replica(base, "hashes", rh, dir, sizeof(dir));
	for (int r = 0; r < 300; r++)
	{
		random_group(c, ref, rh);
		if (r % 60 != 59)
			continue;
		CHECK(slcli_range_hashes_local(c, c->cur.gen, got, &total) == SLCL_OK, "range hashes: %s", c->err);
		CHECK(differing(rh, got, &which) == 0, "after %d groups: %d buckets differ from the incremental ones",
			  r + 1, differing(rh, got, &which));
		CHECK(slc_hash_equal(&total, &c->cur.hash) && slc_hash_equal(&total, slc_state_hash(ref)),
			  "after %d groups: the rows' hash is the running hash and the reference's", r + 1);
		slc_hash_init(&sum);
		for (int b = 0; b < SLC_BUCKETS; b++)
			slc_hash_combine(&sum, &got[b]);
		CHECK(slc_hash_equal(&sum, &total), "after %d groups: the range hashes add up to the total", r + 1);
	}
	CHECK(c->cur.hash.count > 50, "the run left %llu items", (unsigned long long) c->cur.hash.count);

	/* a value damaged in place: its own bucket, and only it */
	s = slcli_store_prepare(c, "UPDATE item SET val = val || x'00' WHERE gen = ?1 AND ns = 1 AND "
							"key = (SELECT key FROM item WHERE gen = ?1 AND ns = 1 ORDER BY key LIMIT 1) "
							"RETURNING key");
	CHECK(s != NULL, "prepare: %s", c->err);
	if (s)
	{
		sqlite3_bind_int64(s, 1, c->cur.gen);
		CHECK(sqlite3_step(s) == SQLITE_ROW, "damage a row");
		{
			uint32_t	want = slc_bucket(SLC_NS_DATA, sqlite3_column_blob(s, 0),
										  (size_t) sqlite3_column_bytes(s, 0));

			sqlite3_finalize(s);
			CHECK(slcli_range_hashes_local(c, c->cur.gen, got, &total) == SLCL_OK, "range hashes");
			CHECK(differing(rh, got, &which) == 1 && which == (int) want,
				  "a damaged value shows as its bucket %u alone (%d differ, last %d)", want,
				  differing(rh, got, &which), which);
			CHECK(!slc_hash_equal(&total, &c->cur.hash), "the damaged rows do not add up to the running hash");
		}
	}
	slcl_close(c);
	slc_state_free(ref);
	free(rh);
	free(got);
	printf("range hashes: 300 seeded random groups, from the rows == incremental per bucket, sum == running hash; a damaged value is its bucket alone\n");
}

/* The hash of the reference after the staged changes. */
typedef struct stg
{
	uint8_t		ns;
	const char *key;
	const char *val;			/* NULL: delete */
} stg;

static void
stage_all(slcl_client *c, const stg *st, int n, slc_state *ref)
{
	CHECK(slcli_store_begin(c) == SLCL_OK, "begin: %s", c->err);
	for (int i = 0; i < n; i++)
	{
		uint8_t		w[SLC_WATERMARK_LEN];
		const uint8_t *v = (const uint8_t *) st[i].val;
		size_t		vl = v ? strlen(st[i].val) : 0;

		if (st[i].ns == SLC_NS_CLIENT && v)
		{
			slc_watermark_encode(atoi(st[i].val), 77, w);
			v = w;
			vl = sizeof(w);
		}
		CHECK(slcli_stage_put(c, st[i].ns, (const uint8_t *) st[i].key, strlen(st[i].key), v, vl) == SLCL_OK,
			  "stage: %s", c->err);
		if (ref)
			slc_state_put(ref, st[i].ns, (const uint8_t *) st[i].key, strlen(st[i].key), v, vl);
	}
	CHECK(slcli_job_save(c) == SLCL_OK, "job: %s", c->err);
	CHECK(slcli_store_commit(c) == SLCL_OK, "commit stage: %s", c->err);
}

static int64_t
count_of(slcl_client *c, const char *sql)
{
	sqlite3_stmt *s = slcli_store_prepare(c, sql);
	int64_t		n = -1;

	if (s && sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

/* The job of a range repair on c's live state, to (LOG2, lsn), hash of ref. */
static void
job_for(slcl_client *c, const slc_state *ref, int64_t lsn)
{
	c->job_kind = SLCLI_JOB_RANGE;
	c->job_reason = SLCL_DL_MISMATCH;
	c->job_gen = c->committed.have ? c->committed.gen : -1;
	c->job_sgen = c->committed.have ? -1 : slcli_store_new_gen(c);
	snprintf(c->job_from_log, sizeof(c->job_from_log), "%s", c->committed.have ? c->committed.log_id : "");
	c->job_from_lsn = c->committed.have ? c->committed.lsn : -1;
	memset(c->job_from_chain, 0, SLCL_CHAIN_LEN);
	snprintf(c->job_log, sizeof(c->job_log), "%s", LOG2);
	c->job_lsn = lsn;
	memset(c->job_chain, 0x5a, SLCL_CHAIN_LEN);
	slc_hash_serialize(slc_state_hash(ref), c->job_hash);
	if (c->committed.have)
		c->job_base = c->committed.hash;
	else
		slc_hash_init(&c->job_base);
	c->job_buckets.len = 0;
	c->job_have_after = 0;
	c->job_rows = c->job_bytes = c->job_ms = 0;
}

static const stg changes[] = {
	{SLC_NS_DATA, "key0-1", "replaced"},
	{SLC_NS_DATA, "key1-2", NULL},
	{SLC_NS_DATA, "brand-new", "fresh"},
	{SLC_NS_DATA, "absent-and-deleted", NULL},
	{SLC_NS_CLIENT, "carol", "5"},
};

static int
copy_item(void *arg, uint8_t ns, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	return slc_state_put(arg, ns, key, klen, val, vlen) != SLC_OK;
}

static void
test_swap(const char *base)
{
	char		dir[1024];
	slcl_client *c;
	slcl_reader *rd;
	slc_state  *ref = slc_state_new();
	slc_hash   *rh = malloc(sizeof(slc_hash) * SLC_BUCKETS);
	int			matched = -1;
	int			ok = 0;
	char		why[256];
	const char *log_id;
	int64_t		lsn;
	uint8_t		h[SLC_HASH_LEN],
				want[SLC_HASH_LEN];
	pid_t		pid;
	int			status;

	c = fresh_replica(base, "swap", rh, dir, sizeof(dir));
	for (int r = 0; r < 40; r++)
		random_group(c, ref, rh);
	lsn = c->cur.lsn;

	/* a wrong target: nothing changes, the stage stays */
	{
		slc_state  *wrong = slc_state_new();

		job_for(c, wrong, lsn + 5);
		stage_all(c, changes, 5, NULL);
		slc_state_free(wrong);
	}
	slcl_hash(c, h);
	CHECK(slcli_stage_swap(c, &matched) == SLCL_OK && matched == 0, "a wrong target does not swap: %s", c->err);
	slcl_hash(c, want);
	CHECK(memcmp(h, want, SLC_HASH_LEN) == 0 && c->committed.lsn == lsn &&
		  count_of(c, "SELECT count(*) FROM stage") == 5, "a wrong target leaves state and stage");

	/* the right one: readers see the old state until the swap commits */
	CHECK(slcl_reader_open(dir, "rdoc", &rd) == SLCL_OK, "reader: %s", slcl_open_error());
	stage_all(c, changes, 5, ref);
	job_for(c, ref, lsn + 5);
	CHECK(slcli_store_begin(c) == SLCL_OK && slcli_job_save(c) == SLCL_OK && slcli_store_commit(c) == SLCL_OK,
		  "job saved");
	CHECK(slcl_reader_position(rd, &log_id, &lsn, NULL, NULL) == SLCL_OK && strcmp(log_id, LOG1) == 0,
		  "readers see the old state while it is staged");
	CHECK(slcli_stage_swap(c, &matched) == SLCL_OK && matched == 1, "swap: %s", c->err);
	CHECK(slcl_reader_position(rd, &log_id, &lsn, NULL, NULL) == SLCL_OK && strcmp(log_id, LOG1) == 0,
		  "readers see the old state until the swap commits");
	CHECK(slcli_store_commit(c) == SLCL_OK, "commit swap: %s", c->err);
	CHECK(slcl_reader_position(rd, &log_id, &lsn, NULL, h) == SLCL_OK && strcmp(log_id, LOG2) == 0 &&
		  lsn == c->job_lsn, "readers see the new state after it");
	slc_hash_serialize(slc_state_hash(ref), want);
	CHECK(memcmp(h, want, SLC_HASH_LEN) == 0, "the new state's hash is the target's");
	CHECK(slcli_store_check(c, c->committed.gen, &c->committed.hash, NULL, &ok, why, sizeof(why)) == SLCL_OK && ok,
		  "the rows add up to the new running hash: %s", why);
	CHECK(slc_hash_equal(&c->committed.hash, slc_state_hash(ref)) &&
		  (int64_t) slc_state_count(ref) == count_of(c, "SELECT count(*) FROM item"),
		  "the replica is the reference, item for item");
	CHECK(count_of(c, "SELECT count(*) FROM stage") == 0 && count_of(c, "SELECT count(*) FROM job") == 0,
		  "job and stage gone with the swap");
	{
		uint8_t		chain[SLCL_CHAIN_LEN],
					z[SLCL_CHAIN_LEN];

		memset(z, 0x5a, sizeof(z));
		slcl_chain(c, chain);
		CHECK(memcmp(chain, z, SLCL_CHAIN_LEN) == 0, "the position takes the target's chain");
	}
	slcl_reader_close(rd);

	/* kill -9 between the verified swap and its commit, then resume */
	{
		static const stg more[] = {
			{SLC_NS_DATA, "brand-new", "fresher"},
			{SLC_NS_DATA, "key2-3", "x"},
		};
		slc_state  *ref2 = slc_state_new();
		slc_hash	before = c->committed.hash;

		/* the reference after `more`: a copy of ref, changed */
		CHECK(slc_state_foreach(ref, copy_item, ref2) == 0, "copy");
		for (int i = 0; i < 2; i++)
			slc_state_put(ref2, SLC_NS_DATA, (const uint8_t *) more[i].key, strlen(more[i].key),
						  (const uint8_t *) more[i].val, strlen(more[i].val));
		slcl_close(c);
		fflush(NULL);
		pid = fork();
		if (pid == 0)
		{
			kill_at_debug = 1;
			c = open_dir(dir, "repair-staged");
			job_for(c, ref2, c->committed.lsn + 9);
			stage_all(c, more, 2, NULL);
			if (slcli_stage_swap(c, &matched) != SLCL_OK)
				_exit(3);
			_exit(2);			/* the debug point kills before this */
		}
		CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			  "killed in the swap (status %d)", status);
		c = open_dir(dir, NULL);
		CHECK(slc_hash_equal(&c->committed.hash, &before) && strcmp(c->committed.log_id, LOG2) == 0,
			  "after the kill: the old state");
		CHECK(c->job_kind == SLCLI_JOB_RANGE && count_of(c, "SELECT count(*) FROM stage") == 2,
			  "after the kill: the job and its stage are there to resume");
		CHECK(slcli_stage_swap(c, &matched) == SLCL_OK && matched == 1 && slcli_store_commit(c) == SLCL_OK,
			  "the resumed swap: %s", c->err);
		CHECK(slc_hash_equal(&c->committed.hash, slc_state_hash(ref2)), "resumed: the target's state");
		slc_state_free(ref2);
	}
	slcl_close(c);

	/* from the empty state: a new generation, installed */
	snprintf(dir, sizeof(dir), "%s/empty", base);
	rm_rf(dir);
	c = open_dir(dir, NULL);
	{
		slc_state  *r0 = slc_state_new();
		static const stg all[] = {
			{SLC_NS_DATA, "a", "1"}, {SLC_NS_DATA, "b", ""}, {SLC_NS_CLIENT, "w", "3"},
		};

		job_for(c, r0, 42);		/* gen -1: no state */
		stage_all(c, all, 3, r0);
		slc_hash_serialize(slc_state_hash(r0), c->job_hash);
		CHECK(!c->committed.have && count_of(c, "SELECT count(*) FROM item") == 3 &&
			  count_of(c, "SELECT count(*) FROM stage") == 0,
			  "from the empty state: the rows go to a generation of their own, no state yet");
		/* a retire pass (as on open) keeps the job's generation */
		{
			int			left = 1;

			while (left && slcli_store_retire(c, &left) == SLCL_OK)
				;
		}
		CHECK(count_of(c, "SELECT count(*) FROM item") == 3, "the job's generation survives a retire pass");
		CHECK(slcli_stage_swap(c, &matched) == SLCL_OK && matched == 1 && slcli_store_commit(c) == SLCL_OK,
			  "swap from the empty state: %s", c->err);
		CHECK(c->committed.have && c->committed.lsn == 42 && slc_hash_equal(&c->committed.hash, slc_state_hash(r0)) &&
			  count_of(c, "SELECT count(*) FROM item") == 3, "from the empty state: installed, 3 items");
		slc_state_free(r0);
	}
	slcl_close(c);
	slc_state_free(ref);
	free(rh);
	printf("swap: only on the target's hash, one transaction (readers see old or new), resumed after kill -9, from the empty state\n");
}

/* The stored range hashes of gen (the bucket table) into rh; -1 if a row is bad. */
static int
stored_hashes(slcl_client *c, int64_t gen, slc_hash *rh)
{
	sqlite3_stmt *s = slcli_store_prepare(c, "SELECT b, hash FROM bucket WHERE gen = ?1");
	int			ok = 0;

	for (int b = 0; b < SLC_BUCKETS; b++)
		slc_hash_init(&rh[b]);
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, gen);
	while (sqlite3_step(s) == SQLITE_ROW)
	{
		int			b = sqlite3_column_int(s, 0);

		if (b < 0 || b >= SLC_BUCKETS ||
			slc_hash_parse(sqlite3_column_blob(s, 1), (size_t) sqlite3_column_bytes(s, 1), &rh[b]) != SLC_OK)
			ok = -1;
	}
	sqlite3_finalize(s);
	return ok;
}

/* The kept range hashes of the live state are the rows' own, and stored. */
static void
kept_matches(slcl_client *c, const char *step, int i)
{
	slc_hash   *kept = malloc(sizeof(slc_hash) * SLC_BUCKETS);
	slc_hash   *rows = malloc(sizeof(slc_hash) * SLC_BUCKETS);
	slc_hash	total;
	int			which = -1;
	int64_t		others;
	char		sql[128];

	CHECK(stored_hashes(c, c->committed.gen, kept) == 0, "%s %d: the bucket rows parse", step, i);
	CHECK(slcli_range_hashes_local(c, c->committed.gen, rows, &total) == SLCL_OK, "rows: %s", c->err);
	CHECK(differing(kept, rows, &which) == 0, "%s %d: %d stored range hashes differ from the rows' (bucket %d)",
		  step, i, differing(kept, rows, &which), which);
	CHECK(slc_hash_equal(&total, &c->committed.hash), "%s %d: the rows are the running hash", step, i);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM bucket WHERE gen <> %lld", (long long) c->committed.gen);
	others = count_of(c, sql);
	CHECK(others == 0 || c->downloading || c->job_kind, "%s %d: %lld bucket rows of other generations",
		  step, i, (long long) others);
	free(kept);
	free(rows);
}

typedef struct bucket_items
{
	uint32_t	b;
	slc_state  *into;
} bucket_items;

static int
copy_bucket(void *arg, uint8_t ns, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	bucket_items *bi = arg;

	if (slc_bucket(ns, key, klen) != bi->b)
		return 0;
	return slc_state_put(bi->into, ns, key, klen, val, vlen) != SLC_OK;
}

/* Where slc_state_foreach puts items: the stage (gen < 0) or a generation. */
typedef struct put_arg
{
	slcl_client *c;
	int64_t		gen;
	slc_hash   *h;
	int			n;
} put_arg;

static int
put_item(void *arg, uint8_t ns, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	put_arg    *pa = arg;

	pa->n++;
	if (pa->gen < 0)
		return slcli_stage_put(pa->c, ns, key, klen, val, vlen) != SLCL_OK;
	return slcli_store_insert(pa->c, pa->gen, pa->h, ns, key, klen, val, vlen) != SLCL_OK;
}

static void
retire_all(slcl_client *c)
{
	int			left = 1;

	while (left)
		if (slcli_store_retire(c, &left) != SLCL_OK)
		{
			CHECK(0, "retire: %s", c->err);
			break;
		}
}

/* The first data key of ref (a 'key<i>-<n>' key the groups write). */
static int
some_key(void *arg, uint8_t ns, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	uint32_t   *b = arg;

	(void) val;
	(void) vlen;
	if (ns != SLC_NS_DATA || next_rand() % 4 != 0)
		return 0;
	*b = slc_bucket(ns, key, klen);
	return 1;
}

static void
test_kept_hashes(const char *base)
{
	char		dir[1024];
	slcl_client *c;
	slc_state  *ref = slc_state_new();
	slc_hash   *rh = malloc(sizeof(slc_hash) * SLC_BUCKETS);
	slc_hash   *got = malloc(sizeof(slc_hash) * SLC_BUCKETS);
	int			matched;
	int			ok;
	int			counts[5] = {0};
	char		why[256];
	int64_t		lsn;

	c = fresh_replica(base, "kept", rh, dir, sizeof(dir));
	for (int i = 0; i < 240; i++)
	{
		int			op = (int) (next_rand() % 10);

		if (op < 5 || slc_state_count(ref) < 10)
		{
			random_group(c, ref, rh);
			kept_matches(c, "apply", i);
			counts[0]++;
		}
		else if (op == 5)
		{
			/* a download: ref with a key changed, into a new generation */
			slc_hash	h;
			int64_t		gen;
			put_arg		ia = {c, -1, &h, 0};
			uint8_t		v[16];
			size_t		vl = (size_t) snprintf((char *) v, sizeof(v), "dl%d", i);

			slc_state_put(ref, SLC_NS_DATA, (const uint8_t *) "key0-1", 6, v, vl);
			slc_hash_init(&h);
			CHECK(slcli_store_begin(c) == SLCL_OK, "begin");
			gen = slcli_store_new_gen(c);
			ia.gen = gen;
			CHECK(slc_state_foreach(ref, put_item, &ia) == 0, "download rows: %s", c->err);
			CHECK(slcli_store_commit(c) == SLCL_OK, "commit a page");
			CHECK(slcli_store_begin(c) == SLCL_OK &&
				  slcli_store_install(c, gen, LOG1, c->cur.lsn + 3, NULL, &h) == SLCL_OK &&
				  slcli_store_commit(c) == SLCL_OK, "install: %s", c->err);
			retire_all(c);
			kept_matches(c, "download", i);
			counts[1]++;
		}
		else if (op == 6 || op == 7)
		{
			/* a catch-up: a few keys set or deleted */
			static const stg cu[] = {
				{SLC_NS_DATA, "key1-3", "caught"}, {SLC_NS_DATA, "key2-5", NULL},
				{SLC_NS_DATA, "key3-7", "up"}, {SLC_NS_CLIENT, "bob", NULL},
			};

			lsn = c->committed.lsn;
			stage_all(c, cu, 4, ref);
			job_for(c, ref, lsn + 2);
			c->job_kind = SLCLI_JOB_CATCH_UP;
			CHECK(slcli_stage_swap(c, &matched) == SLCL_OK && matched && slcli_store_commit(c) == SLCL_OK,
				  "catch-up swap %d: %s", i, c->err);
			c->job_kind = 0;
			kept_matches(c, "catch-up", i);
			counts[2]++;
		}
		else if (op == 8)
		{
			/*
			 * A range repair of one bucket: the server's items of it are
			 * ref's, or ref's but one (the replica then has an item the
			 * server does not).
			 */
			uint32_t	b = 0;
			bucket_items bi;
			put_arg		sa = {c, -1, NULL, 0};
			uint8_t		u[2];

			while (slc_state_foreach(ref, some_key, &b) == 0)
				;
			bi.b = b;
			bi.into = slc_state_new();
			CHECK(slc_state_foreach(ref, copy_bucket, &bi) == 0, "bucket items");
			lsn = c->committed.lsn;
			job_for(c, ref, lsn + 1);
			u[0] = (uint8_t) b;
			u[1] = (uint8_t) (b >> 8);
			buf_put(&c->job_buckets, u, 2);
			CHECK(slcli_store_begin(c) == SLCL_OK, "begin");
			CHECK(slc_state_foreach(bi.into, put_item, &sa) == 0, "stage: %s", c->err);
			CHECK(slcli_job_save(c) == SLCL_OK && slcli_store_commit(c) == SLCL_OK, "job");
			/* every other time the server lacks one of them: gone from ref too */
			if (sa.n >= 1 && next_rand() % 2)
			{
				sqlite3_stmt *s = slcli_store_prepare(c, "DELETE FROM stage WHERE (ns, key) = "
													  "(SELECT ns, key FROM stage ORDER BY ns, key LIMIT 1) "
													  "RETURNING ns, key");

				CHECK(slcli_store_begin(c) == SLCL_OK && s != NULL && sqlite3_step(s) == SQLITE_ROW, "unstage");
				if (s)
				{
					slc_state_put(ref, (uint8_t) sqlite3_column_int(s, 0), sqlite3_column_blob(s, 1),
								  (size_t) sqlite3_column_bytes(s, 1), NULL, 0);
					sqlite3_finalize(s);
				}
				CHECK(slcli_store_commit(c) == SLCL_OK, "commit");
				counts[4]++;
			}
			slc_hash_serialize(slc_state_hash(ref), c->job_hash);
			CHECK(slcli_stage_swap(c, &matched) == SLCL_OK && matched && slcli_store_commit(c) == SLCL_OK,
				  "range swap %d (bucket %u, %d items): %s", i, b, sa.n, c->err);
			c->job_kind = 0;
			slc_state_free(bi.into);
			kept_matches(c, "range repair", i);
			counts[3]++;
		}
		else
		{
			/* reopen: the kept hashes come back from the table (and the open check) */
			slcl_close(c);
			c = open_dir(dir, NULL);
			CHECK(slc_hash_equal(&c->committed.hash, slc_state_hash(ref)), "reopened at %d", i);
			kept_matches(c, "reopen", i);
		}
	}
	CHECK(counts[0] > 50 && counts[1] > 5 && counts[2] > 10 && counts[3] > 5 && counts[4] > 3,
		  "every kind of step ran: %d applies, %d downloads, %d catch-ups, %d range repairs (%d with an item the server lacks)",
		  counts[0], counts[1], counts[2], counts[3], counts[4]);

	/* a replica without the table: the hashes come from its items, once */
	CHECK(slcli_store_begin(c) == SLCL_OK && slcli_store_exec(c, "DELETE FROM bucket") == SLCL_OK &&
		  slcli_store_commit(c) == SLCL_OK, "drop the table's rows");
	slcl_close(c);
	{
		slcl_options o;

		slcl_options_init(&o);
		o.doc = "rdoc";
		o.dir = dir;
		o.client_id = "tester";
		o.open_check = 0;		/* so that the first apply finds them missing */
		CHECK(slcl_open(&o, &c) == SLCL_OK, "open: %s", slcl_open_error());
	}
	CHECK(count_of(c, "SELECT count(*) FROM bucket") == 0, "no bucket rows before the first apply");
	random_group(c, ref, rh);
	kept_matches(c, "first apply without the table", 0);
	/* with the open check: its pass fills the table at once */
	CHECK(slcli_store_begin(c) == SLCL_OK && slcli_store_exec(c, "DELETE FROM bucket") == SLCL_OK &&
		  slcli_store_commit(c) == SLCL_OK, "drop the table's rows again");
	slcl_close(c);
	c = open_dir(dir, NULL);
	CHECK(count_of(c, "SELECT count(*) FROM bucket") > 0, "the open check wrote the range hashes");
	kept_matches(c, "opened with the check, without the table", 0);
	slcl_close(c);

	/* a job row of the layout before repairs at the head: given up on open */
	c = open_dir(dir, NULL);
	CHECK(slcli_store_begin(c) == SLCL_OK &&
		  slcli_store_exec(c, "DROP TABLE job; CREATE TABLE job (id INTEGER PRIMARY KEY CHECK (id = 1), "
						   "kind INTEGER NOT NULL, reason INTEGER NOT NULL, gen INTEGER NOT NULL, "
						   "sgen INTEGER NOT NULL, from_log TEXT, from_lsn INTEGER, from_chain BLOB, "
						   "log_id TEXT NOT NULL, lsn INTEGER NOT NULL, chain BLOB NOT NULL, hash BLOB NOT NULL, "
						   "base BLOB NOT NULL, buckets BLOB NOT NULL, after_bucket INTEGER, after_ns INTEGER, "
						   "after BLOB, rows INTEGER NOT NULL, bytes INTEGER NOT NULL, ms INTEGER NOT NULL, "
						   "chk INTEGER NOT NULL); INSERT INTO job VALUES (1, 2, 0, 1, -1, '', 0, x'', 'x', 0, "
						   "x'', x'', x'', x'', 7, 1, x'00', 0, 0, 0, 0)") == SLCL_OK &&
		  slcli_store_commit(c) == SLCL_OK, "an old job table: %s", c->err);
	slcl_close(c);
	c = open_dir(dir, NULL);
	CHECK(c->job_kind == 0 && count_of(c, "SELECT count(*) FROM job") == 0 &&
		  count_of(c, "SELECT count(*) FROM pragma_table_info('job') WHERE name = 'after_bucket'") == 0,
		  "an old job table is replaced on open, its job given up");
	slcl_close(c);

	/* the open check's range hashes of the values: a damaged row is its bucket */
	c = open_dir(dir, NULL);
	{
		sqlite3_stmt *s = slcli_store_prepare(c, "UPDATE item SET val = val || x'01' WHERE gen = ?1 AND ns = 1 AND "
											  "key = (SELECT key FROM item WHERE gen = ?1 AND ns = 1 ORDER BY key "
											  "LIMIT 1) RETURNING key");
		uint32_t	want = 0;
		int			which = -1;

		sqlite3_bind_int64(s, 1, c->committed.gen);
		CHECK(sqlite3_step(s) == SQLITE_ROW, "damage");
		want = slc_bucket(SLC_NS_DATA, sqlite3_column_blob(s, 0), (size_t) sqlite3_column_bytes(s, 0));
		sqlite3_finalize(s);
		CHECK(slcli_store_check(c, c->committed.gen, &c->committed.hash, got, &ok, why, sizeof(why)) == SLCL_OK &&
			  !ok, "the check finds the damage");
		CHECK(stored_hashes(c, c->committed.gen, rh) == 0 && differing(rh, got, &which) == 1 &&
			  which == (int) want, "the check's hashes differ from the kept ones in the damaged bucket %u alone (%d, last %d)",
			  want, differing(rh, got, &which), which);
		slcl_close(c);
		c = open_dir(dir, NULL);
		CHECK(c->suspect && slcli_check_valid(c) && differing(c->check_rh, got, &which) == 0,
			  "slcl_open keeps the check's hashes of a damaged replica for its repair");
	}
	slcl_close(c);
	slc_state_free(ref);
	free(rh);
	free(got);
	printf("kept range hashes: %d applies, %d downloads, %d catch-ups, %d range repairs, reopens: stored == from the rows; rebuilt when missing; the check shows damage by bucket\n",
		   counts[0], counts[1], counts[2], counts[3]);
}

int
main(int argc, char **argv)
{
	const char *base = argc > 1 ? argv[1] : "tmp_repair";

	rm_rf(base);
	test_range_hashes(base);
	test_swap(base);
	test_kept_hashes(base);
	printf("%d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
