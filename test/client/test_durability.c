/*
 * test_durability.c - crash-safety tests of the client's replica database,
 * offline (no server).
 *
 * It is built with the library's sources and their private header
 * (src/client/client_int.h) so that it can drive the same store calls the
 * protocol code makes (slcli_store_apply_group, the switch, the download's
 * pages and install), and checks every expected state against a reference
 * fold made independently with the shared core's in-memory state
 * (slc_state_apply_entry):
 *
 *  1. kill -9 at every step of a run of groups, switches and a batch (after
 *     applying, before the commit; after the commit): the replica opens at
 *     the last committed step, with the reference's hash, its items
 *     rechecked against it;
 *  2. the write-ahead log cut at every frame boundary (and in between) after
 *     a kill -9: the replica opens at a committed step, never between two,
 *     and the steps it opens at only grow with the cut;
 *  3. a group that fails half-way commits nothing;
 *  4. a download's pages, killed after each: the old state stays readable at
 *     its position, the download resumes after the last committed row; its
 *     install switches in one commit and the old generation is deleted;
 *  5. a flipped byte anywhere in the database file: the replica opens
 *     either exactly right or as damaged (and repairs or downloads), never at a wrong
 *     state; a flipped bit in a stored value is always found;
 *  6. a reader process taking snapshots while the writer commits: every
 *     snapshot's items add up to its own stored hash;
 *  7. the change feed: one event per committed group with its keys, none for
 *     a rolled-back one; a download's difference;
 *  8. a directory of the old file format: converted (state and log), a torn
 *     old log up to its last record, a damaged old state downloaded, a kill
 *     after the conversion committed;
 *  9. the directory lock: a second follower is refused, readers are not;
 * 10. the page file of a real SQLite database replicated page by page:
 *     after every commit it is the database byte for byte and passes
 *     integrity_check; killed in the middle of an update, the hot journal
 *     it leaves is rolled back by SQLite itself to the previous file, and
 *     by the client, which then brings the file up to date.
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <assert.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xxhash.h>

static int	failures;
static int	checks;
static int	events_corrupt,
			events_repair,
			events_resume,
			events_open;

#define CHECK(cond, ...) do { \
	checks++; \
	if (!(cond)) { \
		failures++; \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
	} \
} while (0)

static const char *kill_at_point;	/* open_dir's debug point: SIGKILL there */

/* change events seen: "lsn:ns:s|d:key;" appended */
static char changes_seen[65536];
static int	change_events;

static void
count_events(void *arg, const slcl_event *ev)
{
	(void) arg;
	if (ev->type == SLCL_EV_CORRUPT)
		events_corrupt++;
	if (ev->type == SLCL_EV_REPAIR)
		events_repair++;
	if (ev->type == SLCL_EV_DOWNLOAD_RESUME)
		events_resume++;
	if (ev->type == SLCL_EV_OPEN)
		events_open++;
	if (ev->type == SLCL_EV_DEBUG && kill_at_point)
		raise(SIGKILL);
	if (ev->type == SLCL_EV_CHANGES)
	{
		change_events++;
		for (size_t i = 0; i < ev->nchanges; i++)
		{
			size_t		l = strlen(changes_seen);

			snprintf(changes_seen + l, sizeof(changes_seen) - l, "%lld:%d:%s:%.*s;",
					 (long long) ev->lsn, ev->changes[i].ns, ev->changes[i].deleted ? "d" : "s",
					 (int) ev->changes[i].klen, (const char *) ev->changes[i].key);
		}
	}
}

static char base_dir[1024];
static int	want_changes;
static const char *page_file;	/* options.page_file of open_dir */

static slcl_client *
open_dir(const char *dir)
{
	slcl_options o;
	slcl_client *c = NULL;
	slcl_rc		rc;

	slcl_options_init(&o);
	o.doc = "tdoc";
	o.dir = dir;
	o.client_id = "tester";
	o.on_event = count_events;
	o.changes = want_changes;
	o.page_file = page_file;
	o.debug_point = kill_at_point;
	rc = slcl_open(&o, &c);
	if (rc != SLCL_OK)
	{
		fprintf(stderr, "slcl_open(%s): %s\n", dir, slcl_open_error());
		exit(1);
	}
	return c;
}

static int64_t
file_size(const char *dir, const char *name)
{
	char		p[2048];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (stat(p, &st) != 0)
		return -1;
	return st.st_size;
}

static uint8_t *
slurp(const char *dir, const char *name, size_t *len)
{
	char		p[2048];
	FILE	   *f;
	uint8_t    *b;
	int64_t		n = file_size(dir, name);

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "rb");
	assert(f && n >= 0);
	b = malloc((size_t) n + 1);
	assert(b);
	assert(fread(b, 1, (size_t) n, f) == (size_t) n);
	fclose(f);
	*len = (size_t) n;
	return b;
}

static void
spit(const char *dir, const char *name, const uint8_t *b, size_t len)
{
	char		p[2048];
	FILE	   *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "wb");
	assert(f);
	assert(fwrite(b, 1, len, f) == len);
	fclose(f);
}

static void
sh(const char *fmt, const char *a, const char *b)
{
	char		cmd[4200];

	snprintf(cmd, sizeof(cmd), fmt, a, b);
	if (system(cmd) != 0)
	{
		fprintf(stderr, "failed: %s\n", cmd);
		exit(1);
	}
}

static void
rm_rf(const char *dir)
{
	sh("rm -rf '%s'%s", dir, "");
}

/* cp -a src dst (dst removed first) */
static void
copy_dir(const char *src, const char *dst)
{
	rm_rf(dst);
	sh("cp -a '%s' '%s'", src, dst);
}

/* base_dir/base: the base replica every test starts from */
static const char *
base_path(void)
{
	static char p[1100];

	snprintf(p, sizeof(p), "%s/base", base_dir);
	return p;
}

/* dir/name removed if it is there */
static void
rm_file(const char *dir, const char *name)
{
	char		p[2048];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	unlink(p);
}

/* A delta of n changes setting key k+i to "v<lsn>" (or deleting every 5th). */
static size_t
make_delta(int64_t lsn, int n, uint8_t *out)
{
	slc_change	ch[4];
	uint8_t		keys[4][8];
	char		vals[4][32];

	for (int i = 0; i < n; i++)
	{
		int			k = (int) ((lsn * 7 + i * 3) % 23);

		snprintf((char *) keys[i], sizeof(keys[i]), "k%02d", k + i * 30);
		snprintf(vals[i], sizeof(vals[i]), "v%lld-%d", (long long) lsn, i);
		ch[i].key = keys[i];
		ch[i].klen = (uint32_t) strlen((char *) keys[i]);
		ch[i].is_delete = (lsn % 5 == 0 && i == 0);
		ch[i].val = ch[i].is_delete ? NULL : (const uint8_t *) vals[i];
		ch[i].vlen = ch[i].is_delete ? 0 : (uint32_t) strlen(vals[i]);
	}
	return slc_delta_encode(ch, (uint32_t) n, out);
}

/* What the replica must look like after k steps. */
typedef struct expect
{
	int64_t		lsn;
	char		log_id[SLCL_LOG_ID_MAX + 1];
	uint8_t		hash[SLC_HASH_LEN];
} expect;

#define NREC 24
#define LOG1 "0123456789abcdef0123456789abcdef"
#define LOG2 "fedcba9876543210fedcba9876543210"
static expect ex[NREC + 1];		/* ex[0]: the base state */

/* The base state at (LOG1, 10): 20 items and a watermark, installed. */
static void
install_base(slcl_client *c, slc_state *ref)
{
	slc_hash	h;
	int64_t		gen;
	uint8_t		wm[SLC_WATERMARK_LEN];

	slc_hash_init(&h);
	CHECK(slcli_store_begin(c) == SLCL_OK, "begin: %s", c->err);
	gen = slcli_store_new_gen(c);
	for (int i = 0; i < 20; i++)
	{
		char		k[16],
					v[16];

		snprintf(k, sizeof(k), "k%02d", i);
		snprintf(v, sizeof(v), "base%d", i);
		CHECK(slcli_store_put(c, gen, &h, SLC_NS_DATA, (uint8_t *) k, strlen(k), (uint8_t *) v,
							  strlen(v), 0) == SLCL_OK, "put: %s", c->err);
		if (ref)
			slc_state_put(ref, SLC_NS_DATA, (uint8_t *) k, strlen(k), (uint8_t *) v, strlen(v));
	}
	slc_watermark_encode(3, 9, wm);
	CHECK(slcli_store_put(c, gen, &h, SLC_NS_CLIENT, (uint8_t *) "w", 1, wm, sizeof(wm), 0) == SLCL_OK,
		  "put wm");
	if (ref)
		slc_state_put(ref, SLC_NS_CLIENT, (uint8_t *) "w", 1, wm, sizeof(wm));
	CHECK(slcli_store_install(c, gen, LOG1, 10, NULL, &h) == SLCL_OK, "install: %s", c->err);
	CHECK(slcli_store_commit(c) == SLCL_OK, "commit: %s", c->err);
}

/*
 * Step r of the run (1..NREC): an entry as its own group, a switch to LOG2
 * at r == 12, or at r == 18 a batch of three entries in one transaction.
 * With ref, the reference fold follows.  kill_before_commit: SIGKILL
 * after applying, before the commit.
 */
static void
run_step(slcl_client *c, slc_state *ref, int r, int kill_before_commit)
{
	uint8_t		delta[512];

	if (r == 12)
	{
		CHECK(slcli_store_begin(c) == SLCL_OK, "begin");
		CHECK(slcli_store_set_position(c, LOG2, c->cur.lsn, NULL) == SLCL_OK, "switch");
		if (kill_before_commit)
			raise(SIGKILL);
		CHECK(slcli_store_commit(c) == SLCL_OK, "commit switch: %s", c->err);
		return;
	}
	{
		int			n = r == 18 ? 3 : 1;
		slcli_entry e[3];
		uint8_t		d[3][512];

		for (int j = 0; j < n; j++)
		{
			int64_t		lsn = c->cur.lsn + 1 + j;
			const char *cid = ((r + j) % 4 == 0) ? "writer" : NULL;

			e[j].lsn = lsn;
			e[j].dlen = make_delta(lsn, 1 + (r + j) % 3, d[j]);
			e[j].delta = d[j];
			e[j].cid = cid;
			e[j].cidlen = cid ? 6 : 0;
			e[j].seq = r + j;
			if (ref)
				CHECK(slc_state_apply_entry(ref, d[j], e[j].dlen, lsn, cid, cid ? 6 : 0, r + j) == SLC_OK,
					  "apply ref");
		}
		if (!kill_before_commit)
		{
			CHECK(slcli_store_apply_group(c, e, (size_t) n, c->cur.log_id, e[n - 1].lsn, NULL) == SLCL_OK,
				  "apply group: %s", c->err);
			return;
		}
		CHECK(slcli_store_begin(c) == SLCL_OK, "begin");
		for (int j = 0; j < n; j++)
			CHECK(slcli_store_apply_entry(c, c->cur.gen, &c->cur.hash, &e[j], 1) == SLCL_OK, "apply");
		CHECK(slcli_store_set_position(c, c->cur.log_id, e[n - 1].lsn, NULL) == SLCL_OK, "position");
		raise(SIGKILL);
	}
	(void) delta;
}

/* Build the base replica in dir and the expectations ex[] by the reference. */
static void
build_expectations(const char *dir)
{
	slcl_client *c;
	slc_state  *ref = slc_state_new();

	rm_rf(dir);
	c = open_dir(dir);
	CHECK(!slcl_position(c, NULL, NULL), "a new directory has no position");
	install_base(c, ref);
	ex[0].lsn = 10;
	strcpy(ex[0].log_id, LOG1);
	slc_hash_serialize(slc_state_hash(ref), ex[0].hash);
	slcl_close(c);
	/* the run itself, on a copy, only to fill ex[] */
	{
		char		tmp[1200];

		snprintf(tmp, sizeof(tmp), "%s.full", dir);
		copy_dir(dir, tmp);
		c = open_dir(tmp);
		for (int r = 1; r <= NREC; r++)
		{
			run_step(c, ref, r, 0);
			ex[r].lsn = c->cur.lsn;
			strcpy(ex[r].log_id, c->cur.log_id);
			slc_hash_serialize(slc_state_hash(ref), ex[r].hash);
			{
				uint8_t		h[SLC_HASH_LEN];

				slcl_hash(c, h);
				CHECK(memcmp(h, ex[r].hash, SLC_HASH_LEN) == 0, "step %d: running hash equals the reference fold", r);
			}
		}
		slcl_close(c);
		rm_rf(tmp);
	}
	slc_state_free(ref);
}

/* Open dir; return which ex[] it is at (-1: none matches), checking it. */
static int
opened_at(const char *dir, const char *what)
{
	slcl_client *c;
	const char *log_id;
	int64_t		lsn;
	uint8_t		h[SLC_HASH_LEN];
	int			before = events_corrupt;
	int			k = -1;

	c = open_dir(dir);
	CHECK(events_corrupt == before, "%s: the replica was found damaged", what);
	if (slcl_position(c, &log_id, &lsn))
	{
		slcl_hash(c, h);
		for (int i = 0; i <= NREC; i++)
			if (ex[i].lsn == lsn && strcmp(ex[i].log_id, log_id) == 0 &&
				memcmp(ex[i].hash, h, SLC_HASH_LEN) == 0)
				k = i;
	}
	slcl_close(c);
	return k;
}

/* Run the steps up to `steps` half-steps in a child that kills itself. */
static void
child_run(const char *dir, int kill_at)
{
	pid_t		pid = fork();
	int			st;

	assert(pid >= 0);
	if (pid == 0)
	{
		slcl_client *c = open_dir(dir);

		/* half-step 2r-1: step r applied, not committed; 2r: committed */
		for (int r = 1; r <= NREC; r++)
		{
			if (kill_at == 2 * r - 1)
				run_step(c, NULL, r, 1);
			run_step(c, NULL, r, 0);
			if (kill_at == 2 * r)
				raise(SIGKILL);
		}
		raise(SIGKILL);
	}
	assert(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the child was killed (status %d)", st);
}

static void
test_kill_every_step(void)
{
	char		dir[1100],
				work[1100];
	int			tested = 0;

	snprintf(dir, sizeof(dir), "%s/base", base_dir);
	snprintf(work, sizeof(work), "%s/kill", base_dir);
	build_expectations(dir);
	for (int kill_at = 1; kill_at <= 2 * NREC; kill_at++)
	{
		int			want = kill_at / 2;	/* odd: step not committed */
		char		what[64];

		copy_dir(dir, work);
		child_run(work, kill_at);
		snprintf(what, sizeof(what), "killed at half-step %d", kill_at);
		{
			int			k = opened_at(work, what);

			CHECK(k == want, "%s: opened at step %d, expected %d", what, k, want);
		}
		tested++;
	}
	printf("kill -9 at %d points of a run: each reopened at its last commit, items checked\n", tested);
}

/* Offsets just past each commit frame of a WAL file (and its size). */
static int
wal_commit_ends(const uint8_t *w, size_t len, size_t *ends, int max)
{
	uint32_t	psz;
	int			n = 0;

	if (len < 32)
		return 0;
	psz = ((uint32_t) w[8] << 24) | ((uint32_t) w[9] << 16) | ((uint32_t) w[10] << 8) | w[11];
	for (size_t off = 32; off + 24 + psz <= len && n < max; off += 24 + psz)
	{
		uint32_t	commit = ((uint32_t) w[off + 4] << 24) | ((uint32_t) w[off + 5] << 16) |
			((uint32_t) w[off + 6] << 8) | w[off + 7];

		if (commit != 0)
			ends[n++] = off + 24 + psz;
	}
	return n;
}

static void
test_wal_cuts(void)
{
	char		dir[1100],
				work[1100],
				saved[1100];
	uint8_t    *wal,
			   *db;
	size_t		len,
				dblen;
	size_t		ends[4096];
	int			ncommit,
				last = -1,
				tested = 0,
				bad = 0;

	snprintf(dir, sizeof(dir), "%s/base", base_dir);
	snprintf(saved, sizeof(saved), "%s/walrun", base_dir);
	snprintf(work, sizeof(work), "%s/walcut", base_dir);
	copy_dir(dir, saved);
	child_run(saved, 2 * NREC + 1);	/* everything, then kill -9: no checkpoint */
	wal = slurp(saved, SLCLI_DB_NAME "-wal", &len);
	db = slurp(saved, SLCLI_DB_NAME, &dblen);
	ncommit = wal_commit_ends(wal, len, ends, 4096);
	copy_dir(saved, work);
	CHECK(ncommit >= NREC, "the WAL holds the run's %d commits (%d found)", NREC, ncommit);
	for (size_t cut = 0; cut <= len; cut++)
	{
		int			near = 0;
		int			k;
		char		what[64];

		for (int i = 0; i < ncommit; i++)
			if (cut + 1 >= ends[i] && cut <= ends[i] + 1)
				near = 1;
		if (!near && cut % 1021 != 0 && cut != len)
			continue;
		/* as the disk had it: the database file and the WAL up to the cut */
		rm_file(work, SLCLI_DB_NAME "-shm");
		spit(work, SLCLI_DB_NAME, db, dblen);
		spit(work, SLCLI_DB_NAME "-wal", wal, cut);
		snprintf(what, sizeof(what), "WAL cut at %zu", cut);
		k = opened_at(work, what);
		CHECK(k >= 0, "%s: opened at no committed step", what);
		if (k < last)
			bad++;
		if (k > last)
			last = k;
		tested++;
	}
	CHECK(bad == 0, "WAL cuts: the step opened at went back %d times", bad);
	CHECK(last == NREC, "WAL cut at its end: the last step (%d)", last);
	free(wal);
	free(db);
	rm_rf(saved);
	printf("WAL cut at %d offsets (%d commits): each opened at a committed step, in order\n", tested, ncommit);
}

static void
test_failed_group(void)
{
	char		dir[1100];
	slcl_client *c;
	uint8_t		before[SLC_HASH_LEN],
				after[SLC_HASH_LEN];
	uint8_t		d1[512];
	slcli_entry e[2];
	int64_t		lsn0;
	slcl_reader *r;
	int			found;
	const uint8_t *v;
	size_t		vl;

	snprintf(dir, sizeof(dir), "%s/group", base_dir);
	copy_dir(base_path(), dir);
	c = open_dir(dir);
	slcl_hash(c, before);
	lsn0 = c->cur.lsn;
	e[0].lsn = lsn0 + 1;
	e[0].dlen = make_delta(e[0].lsn, 2, d1);
	e[0].delta = d1;
	e[0].cid = NULL;
	e[0].cidlen = 0;
	e[0].seq = 0;
	e[1] = e[0];
	e[1].lsn = lsn0 + 2;
	e[1].delta = (const uint8_t *) "\x01\x02\x00\x00\x00";	/* two changes announced, none there */
	e[1].dlen = 5;
	CHECK(slcli_store_apply_group(c, e, 2, c->cur.log_id, lsn0 + 2, NULL) == SLCL_ERR_PROTOCOL,
		  "a group with an entry that does not decode fails");
	slcl_hash(c, after);
	CHECK(memcmp(before, after, SLC_HASH_LEN) == 0 && c->cur.lsn == lsn0 && !c->in_txn,
		  "a failed group changes neither hash nor position");
	CHECK(slcl_reader_open(dir, "tdoc", &r) == SLCL_OK, "reader: %s", slcl_open_error());
	{
		char		k[8];

		snprintf(k, sizeof(k), "k%02d", (int) ((e[0].lsn * 7) % 23));
		CHECK(slcl_reader_get(r, (uint8_t *) k, strlen(k), &found, &v, &vl) == SLCL_OK, "get");
		CHECK(!found || vl < 2 || v[0] != 'v', "the failed group's first entry is not visible");
	}
	slcl_reader_close(r);
	slcl_close(c);
	CHECK(opened_at(dir, "after a failed group") == 0, "reopened at the base");
	printf("a group that fails half-way commits nothing\n");
}

/* The download's store calls, as client_download.c makes them. */
static void
dl_begin(slcl_client *c, const char *log, int64_t base)
{
	CHECK(slcli_store_begin(c) == SLCL_OK, "begin");
	c->dl_gen = slcli_store_new_gen(c);
	c->dl_id = 77;
	c->dl_reason = SLCL_DL_COLLECTED;
	snprintf(c->dl_log, sizeof(c->dl_log), "%s", log);
	c->dl_base = base;
	memset(c->dl_hash, 0, SLC_HASH_LEN);
	slc_hash_init(&c->dl_sum);
	c->dl_have_after = 0;
	c->dl_after.len = 0;
	c->dl_rows = c->dl_bytes = 0;
	CHECK(slcli_store_save_download(c) == SLCL_OK, "save download");
	c->downloading = 1;
	CHECK(slcli_store_commit(c) == SLCL_OK, "commit");
}

static void
dl_key(int i, char *k, char *v)
{
	sprintf(k, "dk%03d", i);
	sprintf(v, "download value %d", i);
}

/* Page p (1..) of 4 rows, committed with the progress. */
static void
dl_page(slcl_client *c, int p)
{
	CHECK(slcli_store_begin(c) == SLCL_OK, "begin");
	for (int i = (p - 1) * 4 + 1; i <= p * 4; i++)
	{
		char		k[16],
					v[32];

		dl_key(i, k, v);
		CHECK(slcli_store_insert(c, c->dl_gen, &c->dl_sum, SLC_NS_DATA, (uint8_t *) k, strlen(k),
								 (uint8_t *) v, strlen(v)) == SLCL_OK, "insert: %s", c->err);
		c->dl_after.len = 0;
		buf_put(&c->dl_after, k, strlen(k));
		c->dl_have_after = 1;
		c->dl_rows++;
		c->dl_bytes += (int64_t) (strlen(k) + strlen(v));
	}
	CHECK(slcli_store_save_download(c) == SLCL_OK, "save");
	CHECK(slcli_store_commit(c) == SLCL_OK, "commit");
}

static int64_t
rows_of_gen(slcl_client *c, int64_t gen)
{
	sqlite3_stmt *s = slcli_store_prepare(c, "SELECT count(*) FROM item WHERE gen = ?1");
	int64_t		n = -1;

	sqlite3_bind_int64(s, 1, gen);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

static void
test_download(void)
{
	char		dir[1100],
				work[1100];
	slcl_client *c;
	int			npages = 5;

	snprintf(dir, sizeof(dir), "%s/download", base_dir);
	snprintf(work, sizeof(work), "%s/download.k", base_dir);
	copy_dir(base_path(), dir);

	/* killed after page k (0: after the target was recorded) */
	for (int k = 0; k <= npages; k++)
	{
		pid_t		pid;
		int			st;
		int			before = events_resume;
		slcl_reader *r;
		const char *log_id;
		int64_t		lsn;

		copy_dir(dir, work);
		pid = fork();
		assert(pid >= 0);
		if (pid == 0)
		{
			c = open_dir(work);
			dl_begin(c, LOG2, 500);
			for (int p = 1; p <= k; p++)
				dl_page(c, p);
			raise(SIGKILL);
		}
		assert(waitpid(pid, &st, 0) == pid);
		/* a reader sees the old state while the download is unfinished */
		CHECK(slcl_reader_open(work, "tdoc", &r) == SLCL_OK, "reader");
		CHECK(slcl_reader_position(r, &log_id, &lsn, NULL, NULL) == SLCL_OK &&
			  strcmp(log_id, LOG1) == 0 && lsn == 10, "mid-download (page %d): the old state is readable", k);
		slcl_reader_close(r);
		c = open_dir(work);
		CHECK(c->downloading && c->dl_rows == 4 * k, "killed after page %d: resumes with %lld rows", k,
			  (long long) c->dl_rows);
		CHECK(events_resume == before + 1, "resume reported");
		CHECK(strcmp(c->dl_log, LOG2) == 0 && c->dl_base == 500 && c->dl_reason == SLCL_DL_COLLECTED,
			  "download target restored");
		CHECK(rows_of_gen(c, c->dl_gen) == 4 * k, "the download's generation holds %d rows", 4 * k);
		if (k > 0)
		{
			char		kk[16],
						v[32];

			dl_key(4 * k, kk, v);
			CHECK(c->dl_have_after && c->dl_after.len == strlen(kk) &&
				  memcmp(c->dl_after.p, kk, c->dl_after.len) == 0, "resumes after the last committed key");
		}
		else
			CHECK(!c->dl_have_after, "resumes from the start");
		CHECK(slcl_position(c, NULL, NULL), "the old state keeps its position mid-download");
		/* finish it: the remaining pages, then the install */
		for (int p = k + 1; p <= npages; p++)
			dl_page(c, p);
		{
			int64_t		old_gen = c->cur.gen;
			int			left = 1;
			slc_hash	expect;

			slc_hash_init(&expect);
			for (int i = 1; i <= 4 * npages; i++)
			{
				char		kk[16],
							v[32];

				dl_key(i, kk, v);
				slc_hash_add(&expect, SLC_NS_DATA, (uint8_t *) kk, strlen(kk), (uint8_t *) v, strlen(v));
			}
			CHECK(slc_hash_equal(&expect, &c->dl_sum), "the download's hash is that of its rows");
			CHECK(slcli_store_begin(c) == SLCL_OK, "begin");
			CHECK(slcli_store_install(c, c->dl_gen, LOG2, 500, NULL, &c->dl_sum) == SLCL_OK, "install");
			CHECK(slcli_store_clear_download(c) == SLCL_OK, "clear");
			c->downloading = 0;
			CHECK(slcli_store_commit(c) == SLCL_OK, "commit install");
			CHECK(rows_of_gen(c, old_gen) == 21, "the old generation is still there after the install");
			while (left)
				CHECK(slcli_store_retire(c, &left) == SLCL_OK, "retire");
			CHECK(rows_of_gen(c, old_gen) == 0, "then deleted");
		}
		slcl_close(c);
		c = open_dir(work);
		CHECK(!c->downloading && c->cur.lsn == 500 && strcmp(c->cur.log_id, LOG2) == 0 &&
			  c->cur.hash.count == (uint64_t) 4 * npages, "installed download reopens at its position");
		slcl_close(c);
	}
	rm_rf(work);
	printf("download killed after each page: old state readable, resumes after the last row, installs in one commit\n");
}

static void
test_flipped_bytes(void)
{
	char		dir[1100],
				work[1100];
	uint8_t    *db;
	size_t		len;
	int			detected = 0,
				intact = 0;
	slcl_client *c;

	snprintf(dir, sizeof(dir), "%s/base", base_dir);
	snprintf(work, sizeof(work), "%s/flip", base_dir);
	/* the base replica, closed: everything in replica.db */
	CHECK(file_size(dir, SLCLI_DB_NAME "-wal") <= 0, "no WAL left after a clean close");
	db = slurp(dir, SLCLI_DB_NAME, &len);
	copy_dir(dir, work);
	for (size_t off = 0; off < len; off += 11)
	{
		uint8_t    *bad = malloc(len);
		int			before = events_corrupt;
		const char *log_id;
		int64_t		lsn;

		memcpy(bad, db, len);
		bad[off] ^= 0x10;
		rm_file(work, SLCLI_DB_NAME "-wal");
		rm_file(work, SLCLI_DB_NAME "-shm");
		spit(work, SLCLI_DB_NAME, bad, len);
		free(bad);
		c = open_dir(work);
		if (events_corrupt > before)
		{
			detected++;
			/* a damaged position drops the state; damaged rows keep it for a repair */
			CHECK((!slcl_position(c, NULL, NULL) || c->suspect) &&
				  c->need_download == SLCL_DL_LOCAL_CORRUPT,
				  "flipped byte %zu: found damaged, a repair or download is due", off);
		}
		else
		{
			uint8_t		h[SLC_HASH_LEN];

			intact++;
			slcl_hash(c, h);
			CHECK(slcl_position(c, &log_id, &lsn) && lsn == ex[0].lsn && strcmp(log_id, ex[0].log_id) == 0 &&
				  memcmp(h, ex[0].hash, SLC_HASH_LEN) == 0,
				  "flipped byte %zu: not found damaged, so the state must be exactly right", off);
		}
		slcl_close(c);
	}
	CHECK(detected > 0, "some flipped bytes were found");
	spit(work, SLCLI_DB_NAME, db, len);
	free(db);

	/* a flipped bit inside a stored value is always found */
	copy_dir(dir, work);
	c = open_dir(work);
	{
		char		what[256];
		int			before = events_corrupt;

		CHECK(slcl_debug_damage(c, what, sizeof(what)) == SLCL_OK, "damage: %s", c->err);
		slcl_close(c);
		c = open_dir(work);
		CHECK(events_corrupt == before + 1 && slcl_position(c, NULL, NULL) && c->suspect &&
			  c->need_download == SLCL_DL_LOCAL_CORRUPT,
			  "a damaged value is found on open; the state stays readable until a repair");
		slcl_close(c);
	}
	printf("flipped bytes in the database: %d found damaged, %d harmless (state exact), none wrong\n",
		   detected, intact);
}

/* A reader child: snapshots until told to stop; exit 0 iff all consistent. */
typedef struct sum_ctx
{
	slc_hash	h;
	uint8_t		ns;
} sum_ctx;

static int
sum_item(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	sum_ctx    *x = arg;

	slc_hash_add(&x->h, x->ns, key, klen, val, vlen);
	return 0;
}

static int
reader_loop(const char *dir, int rounds, int *distinct)
{
	slcl_reader *r;
	int64_t		seen_last = -1;

	*distinct = 0;
	if (slcl_reader_open(dir, "tdoc", &r) != SLCL_OK)
		return 1;
	for (int i = 0; i < rounds; i++)
	{
		sum_ctx		x;
		uint8_t		stored[SLC_HASH_LEN],
					got[SLC_HASH_LEN];
		int64_t		lsn;

		slc_hash_init(&x.h);
		if (slcl_reader_begin(r) != SLCL_OK ||
			slcl_reader_position(r, NULL, &lsn, NULL, stored) != SLCL_OK)
			return 2;
		x.ns = SLC_NS_DATA;
		if (slcl_reader_scan(r, SLC_NS_DATA, NULL, 0, NULL, 0, sum_item, &x) != SLCL_OK)
			return 3;
		usleep(200);			/* let the writer commit in the middle */
		x.ns = SLC_NS_CLIENT;
		if (slcl_reader_scan(r, SLC_NS_CLIENT, NULL, 0, NULL, 0, sum_item, &x) != SLCL_OK)
			return 4;
		slcl_reader_end(r);
		slc_hash_serialize(&x.h, got);
		if (memcmp(got, stored, SLC_HASH_LEN) != 0)
		{
			fprintf(stderr, "snapshot at lsn %lld: items do not add up to its hash\n", (long long) lsn);
			return 5;
		}
		if (lsn != seen_last)
			(*distinct)++;
		seen_last = lsn;
	}
	slcl_reader_close(r);
	return 0;
}

static void
test_reader_while_writing(void)
{
	char		dir[1100];
	slcl_client *c;
	pid_t		pid;
	int			st;
	int			pipefd[2];
	int			distinct = 0;

	snprintf(dir, sizeof(dir), "%s/readers", base_dir);
	copy_dir(base_path(), dir);
	assert(pipe(pipefd) == 0);
	/* fork before the writer opens: the child holds nothing it never frees */
	pid = fork();
	assert(pid >= 0);
	if (pid == 0)
	{
		int			rc = reader_loop(dir, 300, &distinct);

		if (write(pipefd[1], &distinct, sizeof(distinct)) != sizeof(distinct))
			rc = 9;
		_exit(rc);
	}
	c = open_dir(dir);
	/* the writer: many small groups, as fast as it can, meanwhile */
	for (int round = 0; round < 40; round++)
		for (int r = 1; r <= NREC; r++)
			if (r != 12)
				run_step(c, NULL, r, 0);
	assert(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reader process: every snapshot consistent (status %d)", st);
	if (read(pipefd[0], &distinct, sizeof(distinct)) != sizeof(distinct))
		distinct = 0;
	CHECK(distinct > 1, "the reader saw the writer move (%d positions)", distinct);
	/* and in this process, through the follower's own reader */
	{
		slcl_reader *r = slcl_client_reader(c);
		int64_t		l1,
					l2;
		uint8_t		h1[SLC_HASH_LEN];
		sum_ctx		x;

		CHECK(r != NULL, "client reader: %s", c->err);
		CHECK(slcl_reader_begin(r) == SLCL_OK, "begin");
		slcl_reader_position(r, NULL, &l1, NULL, h1);
		run_step(c, NULL, 1, 0);
		slcl_reader_position(r, NULL, &l2, NULL, NULL);
		CHECK(l1 == l2 && c->cur.lsn > l1, "a snapshot does not move while the follower commits");
		slc_hash_init(&x.h);
		x.ns = SLC_NS_DATA;
		slcl_reader_scan(r, SLC_NS_DATA, NULL, 0, NULL, 0, sum_item, &x);
		x.ns = SLC_NS_CLIENT;
		slcl_reader_scan(r, SLC_NS_CLIENT, NULL, 0, NULL, 0, sum_item, &x);
		{
			uint8_t		got[SLC_HASH_LEN];

			slc_hash_serialize(&x.h, got);
			CHECK(memcmp(got, h1, SLC_HASH_LEN) == 0, "the snapshot's items are the old state's");
		}
		slcl_reader_end(r);
		slcl_reader_position(r, NULL, &l2, NULL, NULL);
		CHECK(l2 == c->cur.lsn, "after the snapshot, the newest state");
	}
	close(pipefd[0]);
	close(pipefd[1]);
	slcl_close(c);
	printf("a reader process took snapshots while the writer committed: all consistent (%d positions)\n",
		   distinct);
}

typedef struct range_ctx
{
	char		keys[64][16];
	int			n;
} range_ctx;

static int
range_item(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	range_ctx  *x = arg;

	(void) val;
	(void) vlen;
	if (x->n < 64 && klen < 16)
	{
		memcpy(x->keys[x->n], key, klen);
		x->keys[x->n][klen] = '\0';
		x->n++;
	}
	return 0;
}

static void
test_reads_and_changes(void)
{
	char		dir[1100];
	slcl_client *c;
	slcl_reader *r;
	range_ctx	x;
	int			found;
	const uint8_t *v;
	size_t		vl;

	snprintf(dir, sizeof(dir), "%s/changes", base_dir);
	copy_dir(base_path(), dir);
	want_changes = 1;
	c = open_dir(dir);

	/* reads: a key, a range in order, a missing key */
	r = slcl_client_reader(c);
	CHECK(slcl_reader_get(r, (uint8_t *) "k07", 3, &found, &v, &vl) == SLCL_OK && found &&
		  vl == 5 && memcmp(v, "base7", 5) == 0, "get k07");
	CHECK(slcl_reader_get(r, (uint8_t *) "nope", 4, &found, &v, &vl) == SLCL_OK && !found, "get a missing key");
	memset(&x, 0, sizeof(x));
	CHECK(slcl_reader_scan(r, SLC_NS_DATA, (uint8_t *) "k05", 3, (uint8_t *) "k09", 3, range_item, &x) == SLCL_OK,
		  "scan");
	CHECK(x.n == 4 && strcmp(x.keys[0], "k05") == 0 && strcmp(x.keys[3], "k08") == 0,
		  "range [k05, k09) in key order (%d keys)", x.n);

	/* changes: one event per committed group, with its keys */
	changes_seen[0] = '\0';
	change_events = 0;
	{
		slcli_entry e;
		uint8_t		d[64];
		slc_change	ch[2] = {
			{(const uint8_t *) "k01", 3, (const uint8_t *) "new", 3, 0},
			{(const uint8_t *) "k02", 3, NULL, 0, 1}
		};

		e.lsn = 11;
		e.dlen = slc_delta_encode(ch, 2, d);
		e.delta = d;
		e.cid = "me";
		e.cidlen = 2;
		e.seq = 1;
		CHECK(slcli_store_apply_group(c, &e, 1, LOG1, 11, NULL) == SLCL_OK, "group");
		CHECK(change_events == 1 && strcmp(changes_seen, "11:1:s:k01;11:1:d:k02;11:2:s:me;") == 0,
			  "change event of the group: %s", changes_seen);
		/* a rolled-back group tells nothing */
		changes_seen[0] = '\0';
		e.lsn = 12;
		CHECK(slcli_store_begin(c) == SLCL_OK && slcli_store_apply_entry(c, c->cur.gen, &c->cur.hash, &e, 1) == SLCL_OK,
			  "apply");
		slcli_store_rollback(c);
		CHECK(change_events == 1 && changes_seen[0] == '\0', "no event for a rolled-back group");
	}
	/* a download's difference: old base state vs a new one */
	{
		int64_t		old_gen = c->cur.gen;
		slc_hash	h;

		changes_seen[0] = '\0';
		change_events = 0;
		CHECK(slcli_store_begin(c) == SLCL_OK, "begin");
		c->dl_gen = slcli_store_new_gen(c);
		slc_hash_init(&h);
		for (int i = 0; i < 20; i++)
		{
			char		k[16],
						val[16];

			if (i == 3)
				continue;		/* k03 goes */
			snprintf(k, sizeof(k), "k%02d", i);
			snprintf(val, sizeof(val), i == 4 ? "changed" : "base%d", i);
			if (i == 1)
				snprintf(val, sizeof(val), "new");
			slcli_store_insert(c, c->dl_gen, &h, SLC_NS_DATA, (uint8_t *) k, strlen(k), (uint8_t *) val, strlen(val));
		}
		slcli_store_insert(c, c->dl_gen, &h, SLC_NS_DATA, (uint8_t *) "zz", 2, (uint8_t *) "1", 1);
		CHECK(slcli_store_install(c, c->dl_gen, LOG2, 90, NULL, &h) == SLCL_OK, "install");
		CHECK(slcli_store_commit(c) == SLCL_OK, "commit");
		CHECK(slcli_changes_diff(c, old_gen, c->cur.gen) == SLCL_OK, "diff");
		CHECK(strcmp(changes_seen, "90:1:s:k02;90:1:d:k03;90:1:s:k04;90:1:s:zz;90:2:d:me;90:2:d:w;") == 0,
			  "the download's difference: %s", changes_seen);
	}
	slcl_close(c);
	want_changes = 0;
	printf("reads (key, range in order) and the change feed (per group, and a download's difference)\n");
}

/* --- the old file format ------------------------------------------------ */

static void
old_frame(FILE *f, const buf *p)
{
	uint8_t		hdr[12];

	put_u32(hdr, (uint32_t) p->len);
	put_u64(hdr + 4, XXH3_64bits_withSeed(p->p, p->len, (XXH64_hash_t) p->len));
	assert(fwrite(hdr, 1, 12, f) == 12 && fwrite(p->p, 1, p->len, f) == p->len);
}

typedef struct old_writer
{
	FILE	   *f;
	buf			b;
	int64_t		n;
} old_writer;

static int
old_item(void *arg, uint8_t ns, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	old_writer *w = arg;

	w->b.len = 0;
	buf_u8(&w->b, 'I');
	buf_u8(&w->b, ns);
	buf_u32(&w->b, (uint32_t) klen);
	buf_put(&w->b, key, klen);
	buf_put(&w->b, val, vlen);
	old_frame(w->f, &w->b);
	w->n++;
	return 0;
}

/*
 * Write an old-format replica of ref at (log, lsn) into dir: `state`, and a
 * `log` with nent entries after it (applied to ref too), a switch after the
 * third.  Returns the log's record ends in ends[] (ends[0]: the header).
 */
static void
write_old(const char *dir, slc_state *ref, int nent, expect *oex, int64_t *ends)
{
	char		p[1200];
	old_writer	w = {0};
	uint8_t		h[SLC_HASH_LEN];
	char		log_id[SLCL_LOG_ID_MAX + 1] = LOG1;
	int64_t		lsn = 10;
	uint64_t	gen = 4242;

	rm_rf(dir);
	assert(mkdir(dir, 0700) == 0);
	snprintf(p, sizeof(p), "%s/state", dir);
	w.f = fopen(p, "wb");
	assert(w.f && fwrite("SLCLST01", 1, 8, w.f) == 8);
	slc_hash_serialize(slc_state_hash(ref), h);
	buf_u8(&w.b, 'P');
	buf_u64(&w.b, gen);
	buf_u64(&w.b, 0);
	buf_u64(&w.b, (uint64_t) lsn);
	buf_put(&w.b, h, SLC_HASH_LEN);
	buf_u64(&w.b, slc_state_count(ref));
	buf_lp(&w.b, log_id, strlen(log_id));
	buf_lp(&w.b, "tdoc", 4);
	old_frame(w.f, &w.b);
	slc_state_foreach(ref, old_item, &w);
	w.b.len = 0;
	buf_u8(&w.b, 'Z');
	buf_u64(&w.b, (uint64_t) w.n);
	old_frame(w.f, &w.b);
	fclose(w.f);

	oex[0].lsn = lsn;
	strcpy(oex[0].log_id, log_id);
	memcpy(oex[0].hash, h, SLC_HASH_LEN);
	snprintf(p, sizeof(p), "%s/log", dir);
	w.f = fopen(p, "wb");
	assert(w.f && fwrite("SLCLLG01", 1, 8, w.f) == 8);
	w.b.len = 0;
	buf_u8(&w.b, 'H');
	buf_u64(&w.b, gen);
	old_frame(w.f, &w.b);
	ends[0] = ftell(w.f);
	for (int i = 1; i <= nent; i++)
	{
		w.b.len = 0;
		if (i == 4)
		{
			slc_hash_serialize(slc_state_hash(ref), h);
			buf_u8(&w.b, 'S');
			buf_u64(&w.b, (uint64_t) lsn);
			buf_put(&w.b, h, SLC_HASH_LEN);
			buf_lp(&w.b, log_id, strlen(log_id));
			buf_lp(&w.b, LOG2, strlen(LOG2));
			strcpy(log_id, LOG2);
		}
		else
		{
			uint8_t		d[512];
			size_t		dl = make_delta(lsn + 1, 1 + i % 3, d);

			lsn++;
			assert(slc_state_apply_entry(ref, d, dl, lsn, i % 2 ? "ow" : NULL, 2, i) == SLC_OK);
			buf_u8(&w.b, 'E');
			buf_u64(&w.b, (uint64_t) lsn);
			buf_u64(&w.b, (uint64_t) i);
			buf_u32(&w.b, i % 2 ? 2 : UINT32_MAX);
			if (i % 2)
				buf_put(&w.b, "ow", 2);
			buf_put(&w.b, d, dl);
		}
		old_frame(w.f, &w.b);
		ends[i] = ftell(w.f);
		oex[i].lsn = lsn;
		strcpy(oex[i].log_id, log_id);
		slc_hash_serialize(slc_state_hash(ref), oex[i].hash);
	}
	fclose(w.f);
	free(w.b.p);
}

static slc_state *
old_ref(void)
{
	slc_state  *ref = slc_state_new();
	uint8_t		wm[SLC_WATERMARK_LEN];

	for (int i = 0; i < 30; i++)
	{
		char		k[16],
					v[32];

		snprintf(k, sizeof(k), "k%02d", i);
		snprintf(v, sizeof(v), "old value %d", i);
		slc_state_put(ref, SLC_NS_DATA, (uint8_t *) k, strlen(k), (uint8_t *) v, strlen(v));
	}
	slc_watermark_encode(5, 8, wm);
	slc_state_put(ref, SLC_NS_CLIENT, (uint8_t *) "ow", 2, wm, sizeof(wm));
	return ref;
}

static int
converted_to(const char *dir, const expect *e, const char *what)
{
	slcl_client *c = open_dir(dir);
	const char *log_id;
	int64_t		lsn;
	uint8_t		h[SLC_HASH_LEN];
	int			ok = 0;

	if (slcl_position(c, &log_id, &lsn))
	{
		slcl_hash(c, h);
		ok = lsn == e->lsn && strcmp(log_id, e->log_id) == 0 && memcmp(h, e->hash, SLC_HASH_LEN) == 0;
	}
	CHECK(ok, "%s: converted to the expected position and hash", what);
	slcl_close(c);
	CHECK(file_size(dir, "state") == -1 && file_size(dir, "log") == -1, "%s: old files removed", what);
	/* a second open finds a plain replica */
	c = open_dir(dir);
	CHECK(slcl_position(c, NULL, &lsn) && lsn == e->lsn, "%s: reopens", what);
	slcl_close(c);
	return ok;
}

static void
test_legacy(void)
{
	char		dir[1100],
				saved[1100];
	expect		oex[9];
	int64_t		ends[9];
	slc_state  *ref = old_ref();
	uint8_t    *log;
	size_t		len;
	int			cuts = 0;

	snprintf(dir, sizeof(dir), "%s/legacy", base_dir);
	snprintf(saved, sizeof(saved), "%s/legacy.saved", base_dir);
	write_old(dir, ref, 8, oex, ends);
	slc_state_free(ref);
	copy_dir(dir, saved);
	converted_to(dir, &oex[8], "old state and log");

	/* a torn old log: converted up to its last complete record */
	log = slurp(saved, "log", &len);
	for (size_t cut = (size_t) ends[0]; cut <= len; cut += 5)
	{
		int			k = 0;
		char		what[64];

		while (k < 8 && (size_t) ends[k + 1] <= cut)
			k++;
		copy_dir(saved, dir);
		spit(dir, "log", log, cut);
		snprintf(what, sizeof(what), "old log cut at %zu", cut);
		converted_to(dir, &oex[k], what);
		cuts++;
	}
	free(log);

	/* a damaged old state: dropped, a download is due */
	{
		uint8_t    *st;
		slcl_client *c;
		int			before = events_corrupt;

		copy_dir(saved, dir);
		st = slurp(dir, "state", &len);
		st[len / 2] ^= 0x04;
		spit(dir, "state", st, len);
		free(st);
		c = open_dir(dir);
		CHECK(events_corrupt == before + 1 && !slcl_position(c, NULL, NULL) &&
			  c->need_download == SLCL_DL_LOCAL_CORRUPT, "damaged old state: download due");
		slcl_close(c);
		CHECK(file_size(dir, "state") == -1, "damaged old state: removed");
	}
	/* an old download in progress: started again */
	{
		slcl_client *c;
		int			before = events_repair;

		FILE	   *f;
		char		p[1200];
		buf			b = {0};

		copy_dir(saved, dir);
		snprintf(p, sizeof(p), "%s/download", dir);
		f = fopen(p, "wb");
		assert(f && fwrite("SLCLDL01", 1, 8, f) == 8);
		buf_u8(&b, 'D');
		buf_u64(&b, 99);		/* not the state's origin (0): it was interrupted */
		old_frame(f, &b);
		fclose(f);
		free(b.p);
		c = open_dir(dir);
		CHECK(events_repair == before + 1 && !slcl_position(c, NULL, NULL) && !c->downloading,
			  "old download in progress: no state, downloads again");
		slcl_close(c);
		CHECK(file_size(dir, "download") == -1 && file_size(dir, "state") == -1, "old download: files removed");
	}
	/* killed after the conversion committed, before the old files went */
	{
		pid_t		pid;
		int			st;
		int			before = events_repair;

		copy_dir(saved, dir);
		pid = fork();
		assert(pid >= 0);
		if (pid == 0)
		{
			slcl_options o;
			slcl_client *c;

			slcl_options_init(&o);
			o.doc = "tdoc";
			o.dir = dir;
			o.client_id = "tester";
			o.debug_point = "converted";
			o.on_event = count_events;
			o.debug_delay_ms = 60000;
			alarm(1);			/* SIGALRM kills it at the debug point's sleep */
			slcl_open(&o, &c);
			_exit(0);
		}
		assert(waitpid(pid, &st, 0) == pid);
		CHECK(WIFSIGNALED(st), "killed at the debug point");
		CHECK(file_size(dir, "state") > 0, "the old files were still there");
		converted_to(dir, &oex[8], "killed after the conversion");
		CHECK(events_repair == before + 1, "old files of a converted replica: removed as a repair");
	}
	rm_rf(saved);
	printf("old-format directories: converted (log cut at %d points), damaged or mid-download ones downloaded\n",
		   cuts);
}

static void
test_lock(void)
{
	char		dir[1100];
	slcl_client *c,
			   *c2 = NULL;
	slcl_reader *r = NULL;
	slcl_options o;

	snprintf(dir, sizeof(dir), "%s/base", base_dir);
	c = open_dir(dir);
	slcl_options_init(&o);
	o.doc = "tdoc";
	o.dir = dir;
	CHECK(slcl_open(&o, &c2) == SLCL_ERR_LOCKED && c2 == NULL, "a second follower is refused");
	CHECK(slcl_reader_open(dir, "tdoc", &r) == SLCL_OK, "a reader is not: %s", slcl_open_error());
	slcl_reader_close(r);
	CHECK(slcl_reader_open(dir, "other", &r) == SLCL_ERR_ARG, "a reader of another document is refused");
	o.doc = "other";
	slcl_close(c);
	CHECK(slcl_open(&o, &c2) == SLCL_ERR_ARG && c2 == NULL, "another document's directory is refused");
	printf("the directory lock holds for followers, not for readers\n");
}

/* --- the page file ------------------------------------------------------ */

static void
sql_exec(sqlite3 *db, const char *sql)
{
	char	   *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
	{
		fprintf(stderr, "%s: %s\n", sql, err ? err : "?");
		exit(1);
	}
}

/* The group that takes the document from old to new (pages of 4 KiB). */
static void
apply_file_diff(slcl_client *c, const uint8_t *old, size_t oldlen, const uint8_t *new, size_t newlen)
{
	size_t		nold = oldlen / 4096,
				nnew = newlen / 4096,
				n = 0;
	slc_change *ch = calloc(nold + nnew + 1, sizeof(*ch));
	uint8_t    *keys = malloc(4 * (nold + nnew + 1));
	uint8_t    *delta;
	slcli_entry e;

	assert(ch && keys);
	for (size_t i = 0; i < (nold > nnew ? nold : nnew); i++)
	{
		if (i < nnew && i < nold && memcmp(old + i * 4096, new + i * 4096, 4096) == 0)
			continue;
		for (int b = 0; b < 4; b++)
			keys[4 * n + b] = (uint8_t) ((i + 1) >> (24 - 8 * b));
		ch[n].key = keys + 4 * n;
		ch[n].klen = 4;
		ch[n].is_delete = i >= nnew;
		ch[n].val = i < nnew ? new + i * 4096 : NULL;
		ch[n].vlen = i < nnew ? 4096 : 0;
		n++;
	}
	delta = malloc(slc_delta_encoded_size(ch, (uint32_t) n) + 1);
	assert(delta);
	e.lsn = c->cur.lsn + 1;
	e.dlen = slc_delta_encode(ch, (uint32_t) n, delta);
	e.delta = delta;
	e.cid = NULL;
	e.cidlen = 0;
	e.seq = 0;
	CHECK(slcli_store_apply_group(c, &e, 1, c->cur.log_id, e.lsn, NULL) == SLCL_OK, "page group: %s", c->err);
	free(delta);
	free(keys);
	free(ch);
}

static const char *
integrity(const char *path, int readonly)
{
	static char out[256];
	sqlite3    *db;
	sqlite3_stmt *s;

	snprintf(out, sizeof(out), "cannot open");
	if (sqlite3_open_v2(path, &db, readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
		sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) == SQLITE_OK)
	{
		snprintf(out, sizeof(out), "%s", sqlite3_step(s) == SQLITE_ROW ? (const char *) sqlite3_column_text(s, 0) : sqlite3_errmsg(db));
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return out;
}

/* a whole file, by its path */
static uint8_t *
slurp_path(const char *path, size_t *len)
{
	char		dir[1200];
	const char *slash = strrchr(path, '/');

	assert(slash);
	snprintf(dir, sizeof(dir), "%.*s", (int) (slash - path), path);
	return slurp(dir, slash + 1, len);
}

static int
same_file(const char *a, const char *b)
{
	size_t		la,
				lb;
	uint8_t    *x = slurp_path(a, &la),
			   *y = slurp_path(b, &lb);
	int			same = la == lb && memcmp(x, y, la) == 0;

	free(x);
	free(y);
	return same;
}

static void
test_pagefile(void)
{
	char		dir[1100],
				wpath[1200],
				ppath[1200],
				cpath[1300],
				jpath[1400];
	sqlite3    *w;
	uint8_t    *prev,
			   *cur;
	size_t		prevlen,
				curlen;
	slcl_client *c;
	int			rounds = 0,
				kills = 0;
	static const char *const work[] = {
		"CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b BLOB)",
		"WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 100) "
		"INSERT INTO t (a, b) SELECT 'x' || v, randomblob(300) FROM s",
		"INSERT INTO t (a, b) VALUES ('big', randomblob(20000))",
		"CREATE INDEX t_a ON t (a)",
		"UPDATE t SET b = randomblob(100) WHERE id % 3 = 0",
		"DELETE FROM t WHERE id % 2 = 0 OR a = 'big'",
		"VACUUM",
		"WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 50) "
		"INSERT INTO t (a, b) SELECT 'y' || v, randomblob(500) FROM s",
	};

	snprintf(dir, sizeof(dir), "%s/pagefile", base_dir);
	rm_rf(dir);
	assert(mkdir(dir, 0700) == 0);
	snprintf(wpath, sizeof(wpath), "%s/writer.db", dir);
	snprintf(ppath, sizeof(ppath), "%s/copy.db", dir);
	snprintf(cpath, sizeof(cpath), "%s/sqlite-rollback.db", dir);
	snprintf(jpath, sizeof(jpath), "%s-journal", cpath);
	assert(sqlite3_open(wpath, &w) == SQLITE_OK);
	sql_exec(w, "PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE");
	sql_exec(w, "CREATE TABLE seed (x)");
	prev = slurp_path(wpath, &prevlen);

	/* the replica starts at the seed database (installed: the file is written whole) */
	page_file = ppath;
	{
		char		rdir[1200];
		slc_hash	h;
		int64_t		gen;

		snprintf(rdir, sizeof(rdir), "%s/replica", dir);
		c = open_dir(rdir);
		slc_hash_init(&h);
		CHECK(slcli_store_begin(c) == SLCL_OK, "begin");
		gen = slcli_store_new_gen(c);
		for (size_t i = 0; i < prevlen / 4096; i++)
		{
			uint8_t		k[4];

			for (int b = 0; b < 4; b++)
				k[b] = (uint8_t) ((i + 1) >> (24 - 8 * b));
			CHECK(slcli_store_put(c, gen, &h, SLC_NS_DATA, k, 4, prev + i * 4096, 4096, 0) == SLCL_OK, "put");
		}
		CHECK(slcli_store_install(c, gen, LOG1, 0, NULL, &h) == SLCL_OK, "install");
		CHECK(slcli_store_commit(c) == SLCL_OK, "commit: %s", c->err);
		CHECK(same_file(wpath, ppath), "the installed state's page file is the database");

		for (int r = 0; r < 2 * (int) (sizeof(work) / sizeof(work[0])); r++)
		{
			int			kill_this = r % 3 == 2;
			pid_t		pid;
			int			st;

			if (r > 0 && r % (int) (sizeof(work) / sizeof(work[0])) == 0)
				sql_exec(w, "DROP TABLE t");	/* the second time round: anew */
			sql_exec(w, work[r % (sizeof(work) / sizeof(work[0]))]);
			cur = slurp_path(wpath, &curlen);
			rounds++;
			if (!kill_this)
			{
				apply_file_diff(c, prev, prevlen, cur, curlen);
				CHECK(same_file(wpath, ppath), "round %d: the page file is the database byte for byte", r);
				CHECK(strcmp(integrity(ppath, 1), "ok") == 0, "round %d: integrity_check of the page file: %s",
					  r, integrity(ppath, 1));
			}
			else
			{
				/* this round's update is killed half-way: pages written, journal there */
				slcl_close(c);
				sh("cp '%s' '%s.before'", ppath, ppath);
				pid = fork();
				assert(pid >= 0);
				if (pid == 0)
				{
					kill_at_point = "pagefile-written";
					c = open_dir(rdir);
					apply_file_diff(c, prev, prevlen, cur, curlen);
					_exit(0);		/* not reached: killed at the point */
				}
				assert(waitpid(pid, &st, 0) == pid);
				CHECK(WIFSIGNALED(st), "round %d: killed in the middle of the page file update", r);
				CHECK(file_size(dir, "copy.db-journal") > 0, "round %d: a hot journal is left", r);
				/* SQLite itself rolls it back: the previous file */
				{
					char		cmd[6000];

					snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && cp '%s-journal' '%s'", ppath, cpath, ppath, jpath);
					assert(system(cmd) == 0);
				}
				CHECK(strcmp(integrity(cpath, 0), "ok") == 0, "round %d: SQLite rolls the journal back", r);
				{
					char		before[1300];

					snprintf(before, sizeof(before), "%s.before", ppath);
					CHECK(same_file(cpath, before), "round %d: to the file before the update", r);
					unlink(before);
				}
				/* and the client, on open, to the replica's position */
				c = open_dir(rdir);
				CHECK(file_size(dir, "copy.db-journal") == -1, "round %d: the client removed the journal", r);
				CHECK(same_file(wpath, ppath), "round %d: reopened, the page file is the database", r);
				CHECK(strcmp(integrity(ppath, 1), "ok") == 0, "round %d: integrity_check after the kill", r);
				kills++;
			}
			free(prev);
			prev = cur;
			prevlen = curlen;
		}
		slcl_close(c);
	}
	page_file = NULL;
	free(prev);
	sqlite3_close(w);
	printf("page file: %d rounds of a real SQLite database, %d killed mid-update, each rolled back and caught up\n",
		   rounds, kills);
}

int
main(int argc, char **argv)
{
	snprintf(base_dir, sizeof(base_dir), "%s", argc > 1 ? argv[1] : "tmp_durability");
	rm_rf(base_dir);
	if (mkdir(base_dir, 0700) != 0)
	{
		perror(base_dir);
		return 1;
	}
	test_kill_every_step();
	test_wal_cuts();
	test_failed_group();
	test_download();
	test_flipped_bytes();
	test_reader_while_writing();
	test_reads_and_changes();
	test_legacy();
	test_lock();
	test_pagefile();
	if (failures == 0)
		rm_rf(base_dir);		/* kept for a look otherwise */
	printf("%d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
