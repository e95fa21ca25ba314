/*
 * client_open.c
 *
 * Opening and closing a handle: options, the directory and its lock, the
 * client id, and recovery on open: the replica database is opened (SQLite
 * itself rolls back what a crash left uncommitted), its position and (with
 * open_check) its items are checked, an old-format directory is converted,
 * an interrupted download is resumed and the rows of old generations that
 * a crash left are deleted.  A damaged replica becomes none and a
 * download.
 *
 * Owns: slcl_options_init, slcl_open, slcl_close, slcl_open_error and
 * slcl_errmsg, the `lock` and `client_id` files, and the decision to drop
 * a damaged replica.
 * Must never: open a directory another handle holds, open a replica of
 * another document, or leave the directory in a state that does not open
 * to a consistent position.
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>


static char open_error[1024];

const char *
slcl_open_error(void)
{
	return open_error;
}

void
slcli_set_open_error(const char *msg)
{
	snprintf(open_error, sizeof(open_error), "%s", msg);
}

const char *
slcl_errmsg(const slcl_client *c)
{
	return c ? c->err : open_error;
}

void
slcl_options_init(slcl_options *o)
{
	memset(o, 0, sizeof(*o));
	o->ack = 1;
	o->ack_interval_ms = 10000;
	o->page_entries = 1000;
	o->page_bytes = 8 * 1024 * 1024;
	o->snapshot_rows = 1000;
	o->open_check = 1;
	o->cache_kib = 8192;
	o->submit_max_bytes = INT64_C(256) * 1024 * 1024;
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int
mkdir_p(const char *dir)
{
	char		tmp[4096];
	size_t		len = strlen(dir);

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, dir, len + 1);
	for (char *p = tmp + 1; *p; p++)
	{
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* Read or create dir/client_id. */
static slcl_rc
load_client_id(slcl_client *c)
{
	char		path[4096];
	char		tmp[4096];
	char		id[256];
	FILE	   *f;
	size_t		n;

	if (c->client_id)
		return SLCL_OK;			/* given in the options */
	slcli_path_of(c, "client_id", path, sizeof(path));
	f = fopen(path, "rb");
	if (f)
	{
		n = fread(id, 1, sizeof(id) - 1, f);
		fclose(f);
		while (n > 0 && (id[n - 1] == '\n' || id[n - 1] == '\r'))
			n--;
		id[n] = '\0';
		if (n > 0 && n <= 200)
		{
			c->client_id = strdup(id);
			return c->client_id ? SLCL_OK : slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
		}
	}
	snprintf(id, sizeof(id), "slcl-%016llx", (unsigned long long) slcli_random64());
	slcli_path_of(c, "client_id.tmp", tmp, sizeof(tmp));
	f = fopen(tmp, "wb");
	if (f == NULL || fprintf(f, "%s\n", id) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)
	{
		if (f)
			fclose(f);
		return slcli_fail_errno(c, "could not write", tmp);
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0 || slcli_fsync_dir(c->dir) != 0)
		return slcli_fail_errno(c, "could not install", path);
	c->client_id = strdup(id);
	return c->client_id ? SLCL_OK : slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
}

/*
 * The database itself is damaged (SQLite says so): remove its files and
 * start an empty one; the replica downloads.
 */
static slcl_rc
reset_db(slcl_client *c, const char *why)
{
	char		msg[1200];

	snprintf(msg, sizeof(msg), "%s", why);
	slcli_store_close(c);
	c->db_corrupt = 0;
	c->downloading = 0;
	if (slcli_remove_file(c, SLCLI_DB_NAME) != 0 || slcli_remove_file(c, SLCLI_DB_NAME "-wal") != 0 ||
		slcli_remove_file(c, SLCLI_DB_NAME "-shm") != 0)
		return SLCL_ERR_IO;
	if (slcli_fsync_dir(c->dir) != 0)
		return slcli_fail_errno(c, "could not fsync", c->dir);
	memset(&c->cur, 0, sizeof(c->cur));
	slc_hash_init(&c->cur.hash);
	c->committed = c->cur;
	slcli_emit_simple(c, SLCL_EV_CORRUPT, "replica database damaged (%s): discarding the replica, will fetch it again", msg);
	c->need_download = SLCL_DL_LOCAL_CORRUPT;
	return SLCL_OK;
}

/* A damaged state (position or items): drop it, keep the database. */
static slcl_rc
drop_damaged(slcl_client *c, const char *why)
{
	c->stats.repairs++;
	slcli_emit_simple(c, SLCL_EV_CORRUPT, "state damaged (%s): discarding the replica, will fetch it again", why);
	c->need_download = SLCL_DL_LOCAL_CORRUPT;
	return slcli_store_drop_state(c);
}

/* Load and check the replica (a damaged state is dropped). */
static slcl_rc
load_checked(slcl_client *c)
{
	char		why[256];
	int			damaged = 0;
	int			ok = 1;
	slcl_rc		rc;

	rc = slcli_store_load(c, &damaged, why, sizeof(why));
	if (rc != SLCL_OK)
		return rc;
	if (damaged)
		return drop_damaged(c, why);	/* no position to repair from */
	if (c->cur.have && c->opt.open_check)
	{
		slc_hash   *rh = malloc(sizeof(slc_hash) * SLC_BUCKETS);

		if (rh == NULL)
			return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
		/* the same pass gives the range hashes of the rows' values */
		rc = slcli_store_check(c, c->cur.gen, &c->cur.hash, rh, &ok, why, sizeof(why));
		if (rc == SLCL_OK && ok)
			rc = slcli_bk_adopt(c, c->cur.gen, rh);
		if (rc != SLCL_OK || ok)
		{
			free(rh);
			return rc;
		}

		/*
		 * Damaged rows under a sound position: the state stays readable
		 * until a range repair (or a download) replaces it.  The repair
		 * compares the range hashes of what the rows hold (the kept ones
		 * say what was applied), so the damaged buckets differ.
		 */
		slcli_check_keep(c, rh);
		c->stats.repairs++;
		c->suspect = 1;
		c->need_download = SLCL_DL_LOCAL_CORRUPT;
		slcli_emit_simple(c, SLCL_EV_CORRUPT, "state damaged (%s): keeping it readable, will repair it",
						  why);
	}
	return SLCL_OK;
}

/*
 * Open the database and bring it to a consistent replica: check it,
 * convert an old-format directory, pick up a download in progress, delete
 * what old generations a crash left.  On a damaged file c->db_corrupt is
 * set and the caller starts over with an empty one.
 */
static slcl_rc
open_db(slcl_client *c)
{
	int			created = 0;
	int			dl;
	int			left = 1;
	int64_t		retired;
	slcl_rc		rc;

	c->downloading = 0;
	rc = slcli_store_open(c, &created);
	if (rc == SLCL_OK)
		rc = load_checked(c);
	if (rc != SLCL_OK)
		return rc;

	/* a directory of the old format: convert it (or drop its leftovers) */
	if (slcli_legacy_present(c))
	{
		rc = slcli_legacy_convert(c);
		if (rc != SLCL_OK)
			return rc;
	}

	dl = slcli_store_load_download(c);
	if (dl == -2)
		return SLCL_ERR_IO;
	if (dl == -1)
	{
		c->stats.repairs++;
		slcli_emit_simple(c, SLCL_EV_REPAIR, "damaged download progress discarded: the download starts over");
		rc = slcli_store_begin(c);
		if (rc == SLCL_OK)
			rc = slcli_store_finish(c, slcli_store_clear_download(c));
		if (rc != SLCL_OK)
			return rc;
		dl = 0;
	}
	if (dl == 1)
		c->downloading = 1;

	/* a catch-up or range repair in progress: resumed if it builds on this state */
	dl = slcli_job_load(c);
	if (dl == -2)
		return SLCL_ERR_IO;
	/* (a job from the empty state, job_gen -1, builds on nothing: any state will do) */
	if (dl == 1 && (c->downloading ||
					(c->job_gen >= 0 &&
					 (!c->cur.have || c->job_gen != c->cur.gen ||
					  strcmp(c->job_from_log, c->cur.log_id) != 0 ||
					  c->job_from_lsn != c->cur.lsn))))
		dl = -1;
	if (dl == -1)
	{
		c->stats.repairs++;
		slcli_emit_simple(c, SLCL_EV_REPAIR, "stale or damaged catch-up or repair progress discarded: it starts over");
		rc = slcli_job_clear(c);
		if (rc != SLCL_OK)
			return rc;
	}
	else if (dl == 0)
		(void) slcli_store_exec(c, "DELETE FROM stage");

	/* rows of generations a crash left behind */
	retired = c->stats.retired_rows;
	while (left)
	{
		rc = slcli_store_retire(c, &left);
		if (rc != SLCL_OK)
			return rc;
	}
	if (c->stats.retired_rows > retired)
		slcli_emit_simple(c, SLCL_EV_REPAIR, "deleted %lld rows of an old generation",
						  (long long) (c->stats.retired_rows - retired));

	if (c->job_kind)
		slcli_job_event(c, "resuming");
	if (c->downloading)
	{
		slcl_event	ev;

		c->stats.downloads_resumed++;
		c->dl_total_rows = c->dl_total_bytes = -1;
		slcli_dl_event(c, &ev, SLCL_EV_DOWNLOAD_RESUME);
		slcli_emit(c, &ev, "log=%s base=%lld reason=%s resuming after %lld keys (%lld bytes)",
				   c->dl_log, (long long) c->dl_base, slcl_reason_name(c->dl_reason),
				   (long long) c->dl_rows, (long long) c->dl_bytes);
	}
	return SLCL_OK;
}

static slcl_rc
open_local(slcl_client *c)
{
	char		path[4096];
	slcl_rc		rc;

	if (mkdir_p(c->dir) != 0)
		return slcli_fail_errno(c, "could not create directory", c->dir);
	slcli_path_of(c, "lock", path, sizeof(path));
	c->lockfd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (c->lockfd < 0)
		return slcli_fail_errno(c, "could not open", path);
	if (flock(c->lockfd, LOCK_EX | LOCK_NB) != 0)
	{
		if (errno == EWOULDBLOCK)
			return slcli_fail(c, SLCL_ERR_LOCKED, "directory \"%s\" is in use by another process", c->dir);
		return slcli_fail_errno(c, "could not lock", path);
	}
	rc = load_client_id(c);
	if (rc != SLCL_OK)
		return rc;
	if (slcli_remove_file(c, "client_id.tmp"))
		return SLCL_ERR_IO;

	/* the queue (queue.db) loads with the replica: it reads replica.db too */
	rc = open_db(c);
	if (rc == SLCL_OK)
		rc = slcli_write_load(c);
	if (rc != SLCL_OK && c->db_corrupt)
	{
		char		why[sizeof(c->err)];

		memcpy(why, c->err, sizeof(why));
		rc = reset_db(c, why);
		if (rc == SLCL_OK)
			rc = open_db(c);
		if (rc == SLCL_OK)
			rc = slcli_write_load(c);
		c->stats.repairs++;		/* the new database's counters start at 0 */
	}
	if (rc != SLCL_OK)
		return rc;
	rc = slcli_pagefile_sync(c);
	if (rc != SLCL_OK)
		return rc;
	if (!c->cur.have)
	{
		if (!c->downloading)
			slcli_emit_simple(c, SLCL_EV_OPEN, "new replica in %s (no local state yet: will fetch it)", c->dir);
		return SLCL_OK;
	}
	slcli_emit_simple(c, SLCL_EV_OPEN, "resumed at log=%s lsn=%lld (%llu items%s)",
					  c->cur.log_id, (long long) c->cur.lsn, (unsigned long long) c->cur.hash.count,
					  c->opt.open_check ? ", checked" : "");
	return SLCL_OK;
}

slcl_rc
slcl_open(const slcl_options *o, slcl_client **out)
{
	slcl_client *c;
	slcl_rc		rc;

	*out = NULL;
	open_error[0] = '\0';
	if (o == NULL || o->doc == NULL || o->dir == NULL || o->doc[0] == '\0' ||
		strlen(o->doc) > 200 || o->dir[0] == '\0')
	{
		snprintf(open_error, sizeof(open_error), "doc (1 to 200 bytes) and dir are required");
		return SLCL_ERR_ARG;
	}
	if (strlen(o->dir) > 3000)
	{
		snprintf(open_error, sizeof(open_error), "dir is too long");
		return SLCL_ERR_ARG;
	}
	if (o->client_id && (o->client_id[0] == '\0' || strlen(o->client_id) > 200))
	{
		snprintf(open_error, sizeof(open_error), "client_id must be 1 to 200 bytes");
		return SLCL_ERR_ARG;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
	{
		snprintf(open_error, sizeof(open_error), "out of memory");
		return SLCL_ERR_NOMEM;
	}
	c->opt = *o;
	if (c->opt.page_entries <= 0)
		c->opt.page_entries = 1000;
	if (c->opt.page_bytes <= 0)
		c->opt.page_bytes = 8 * 1024 * 1024;
	if (c->opt.snapshot_rows <= 0)
		c->opt.snapshot_rows = 1000;
	if (c->opt.ack_interval_ms <= 0)
		c->opt.ack_interval_ms = 10000;
	if (c->opt.cache_kib <= 0)
		c->opt.cache_kib = 8192;
	if (c->opt.part_bytes < 0)
		c->opt.part_bytes = 0;
	if (c->opt.submit_max_bytes <= 0)
		c->opt.submit_max_bytes = INT64_C(256) * 1024 * 1024;
	c->lockfd = -1;
	c->dsn = dup_or_null(o->dsn);
	c->doc = strdup(o->doc);
	c->dir = strdup(o->dir);
	c->debug_point = dup_or_null(o->debug_point);
	c->page_file = dup_or_null(o->page_file);
	c->client_id = dup_or_null(o->client_id);
	slc_hash_init(&c->cur.hash);
	c->committed = c->cur;
	if (c->doc == NULL || c->dir == NULL ||
		(o->dsn && c->dsn == NULL) || (o->debug_point && c->debug_point == NULL) ||
		(o->client_id && c->client_id == NULL) || (o->page_file && c->page_file == NULL))
	{
		slcl_close(c);
		snprintf(open_error, sizeof(open_error), "out of memory");
		return SLCL_ERR_NOMEM;
	}
	c->opt.dsn = c->opt.doc = c->opt.dir = c->opt.client_id = c->opt.debug_point = NULL;
	c->opt.page_file = c->page_file;
	c->doclen = strlen(c->doc);
	c->channel[0] = '\0';		/* asked from the server on connect */
	rc = open_local(c);
	if (rc != SLCL_OK)
	{
		snprintf(open_error, sizeof(open_error), "%s", c->err);
		slcl_close(c);
		return rc;
	}
	*out = c;
	return SLCL_OK;
}

void
slcl_close(slcl_client *c)
{
	if (c == NULL)
		return;
	slcl_reader_close(c->reader);
	slcli_store_close(c);
	slcli_drop_conn(c);
	if (c->lockfd >= 0)
		close(c->lockfd);
	free(c->rec.p);
	free(c->chg.p);
	free(c->dl_after.p);
	free(c->job_buckets.p);
	free(c->job_after.p);
	free(c->dsn);
	free(c->doc);
	free(c->dir);
	free(c->client_id);
	free(c->debug_point);
	free(c->page_file);
	free(c);
}
