/*
 * client_open.c
 *
 * Opening and closing a handle: options, the directory and its lock, the
 * client id, and recovery on open: whatever a crash left in the directory
 * (a half-written file, a stale log, an interrupted or a completed but not
 * yet removed download, a damaged state) is turned into a consistent
 * replica, or into none and a download.
 *
 * Owns: slcl_options_init, slcl_open, slcl_close, slcl_open_error and
 * slcl_errmsg, the `lock` and `client_id` files.
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
	o->checkpoint_bytes = 4 * 1024 * 1024;
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
	slcli_tmp_of(c, "client_id", tmp, sizeof(tmp));
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

static slcl_rc
open_local(slcl_client *c)
{
	char		path[4096];
	int			dl;
	int			st;
	uint64_t	origin = 0;
	uint64_t	dl_id = 0;
	char		why[256];
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
	/* leftovers of interrupted atomic writes */
	if (slcli_remove_file(c, "state.tmp") || slcli_remove_file(c, "log.tmp") ||
		slcli_remove_file(c, "download.tmp") || slcli_remove_file(c, "client_id.tmp"))
		return SLCL_ERR_IO;

	rc = SLCL_OK;
	st = slcli_load_state(c, &origin, why, sizeof(why), &rc);
	if (st == -2)
		return rc;

	dl = slcli_dl_peek(c, &dl_id);
	if (dl == -1)
	{
		/* `download` is created atomically: an unreadable one is damaged */
		c->stats.repairs++;
		slcli_emit_simple(c, SLCL_EV_REPAIR, "unreadable download file discarded");
		if (slcli_remove_file(c, "download") != 0)
			return SLCL_ERR_IO;
		dl = 0;
	}
	if (dl == 1 && st == 1 && origin == dl_id)
	{
		/* the download had completed and its state is in place */
		if (slcli_remove_file(c, "download") != 0 || slcli_fsync_dir(c->dir) != 0)
			return SLCL_ERR_IO;
		dl = 0;
	}
	if (dl == 1)
	{
		/* an interrupted download: resume it; any state left is stale */
		slcl_event	ev;

		slcli_state_reset(c);
		if (slcli_remove_file(c, "state") != 0 || slcli_remove_file(c, "log") != 0)
			return SLCL_ERR_IO;
		if (slcli_fsync_dir(c->dir) != 0)
			return slcli_fail_errno(c, "could not fsync", c->dir);
		dl = slcli_load_download(c);
		if (dl == -2)
			return c->err[0] && strstr(c->err, "another document") ? SLCL_ERR_ARG : SLCL_ERR_IO;
		if (dl == 1)
		{
			c->stats.downloads_resumed++;
			c->dl_total_rows = c->dl_total_bytes = -1;
			memset(&ev, 0, sizeof(ev));
			ev.type = SLCL_EV_DOWNLOAD_RESUME;
			ev.log_id = c->dl_log;
			ev.lsn = c->dl_base;
			ev.reason = c->dl_reason;
			ev.rows = c->dl_rows;
			ev.bytes = c->dl_bytes;
			ev.total_rows = ev.total_bytes = -1;
			slcli_emit(c, &ev, "log=%s base=%lld reason=%s resuming after %lld keys (%lld bytes)",
					   c->dl_log, (long long) c->dl_base, slcl_reason_name(c->dl_reason),
					   (long long) c->dl_rows, (long long) c->dl_bytes);
			return SLCL_OK;
		}
		/* unreadable after all: start from nothing */
		if (slcli_remove_file(c, "download") != 0)
			return SLCL_ERR_IO;
		slcli_emit_simple(c, SLCL_EV_OPEN, "new replica in %s (no local state: will download)", c->dir);
		return SLCL_OK;
	}

	if (st == -1)
	{
		slcli_state_reset(c);
		c->stats.repairs++;
		slcli_emit_simple(c, SLCL_EV_CORRUPT, "state file damaged (%s): discarding the replica, will download", why);
		if (slcli_remove_file(c, "state") != 0 || slcli_remove_file(c, "log") != 0)
			return SLCL_ERR_IO;
		if (slcli_fsync_dir(c->dir) != 0)
			return slcli_fail_errno(c, "could not fsync", c->dir);
		c->need_download = SLCL_DL_LOCAL_CORRUPT;
		return SLCL_OK;
	}
	if (st == 0)
	{
		if (slcli_remove_file(c, "log") != 0)
			return SLCL_ERR_IO;
		slcli_emit_simple(c, SLCL_EV_OPEN, "new replica in %s (no local state: will download)", c->dir);
		return SLCL_OK;
	}
	c->have_state = 1;
	rc = slcli_log_open_replay(c);
	if (rc != SLCL_OK)
		return rc;
	slcli_emit_simple(c, SLCL_EV_OPEN, "resumed at log=%s lsn=%lld (%lld local log records replayed)",
					  c->log_id, (long long) c->lsn, (long long) c->stats.replayed);
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
	if (c->opt.checkpoint_bytes <= 0)
		c->opt.checkpoint_bytes = 4 * 1024 * 1024;
	c->lockfd = -1;
	c->dsn = dup_or_null(o->dsn);
	c->doc = strdup(o->doc);
	c->dir = strdup(o->dir);
	c->debug_point = dup_or_null(o->debug_point);
	c->client_id = dup_or_null(o->client_id);
	c->state = slc_state_new();
	if (c->doc == NULL || c->dir == NULL || c->state == NULL ||
		(o->dsn && c->dsn == NULL) || (o->debug_point && c->debug_point == NULL) ||
		(o->client_id && c->client_id == NULL))
	{
		slcl_close(c);
		snprintf(open_error, sizeof(open_error), "out of memory");
		return SLCL_ERR_NOMEM;
	}
	c->opt.dsn = c->opt.doc = c->opt.dir = c->opt.client_id = c->opt.debug_point = NULL;
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
	if (c->logf)
	{
		(void) slcli_flush_sync(c->logf);
		fclose(c->logf);
	}
	if (c->dlf)
		fclose(c->dlf);
	slcli_drop_conn(c);
	if (c->lockfd >= 0)
		close(c->lockfd);
	slc_state_free(c->state);
	free(c->rec.p);
	free(c->dl_after.p);
	free(c->dsn);
	free(c->doc);
	free(c->dir);
	free(c->client_id);
	free(c->debug_point);
	free(c);
}
