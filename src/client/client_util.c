/*
 * client_util.c
 *
 * Small helpers of the reference client library: a monotonic clock, random
 * 64-bit ids, hex, folding a multi-line message into one line, and the
 * paths and plain files of the directory.
 *
 * Owns: slcli_now_s, slcli_random64, slcli_hex, slcli_one_line,
 * slcli_path_of, slcli_fsync_dir, slcli_remove_file, slcli_file_exists.
 * Must never: fail where it can do without: the clock, the ids, hex and
 * message folding return something usable whatever the system says
 * (slcli_random64 falls back to the clock and the pid when getrandom does
 * not answer, and never returns 0, which ids use as "none"); only the file
 * helpers report errors (slcli_remove_file into the handle's message, a
 * missing file being no error).
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

double
slcli_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t
slcli_random64(void)
{
	uint64_t	v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t) sizeof(v))
		v = (uint64_t) time(NULL) * 6364136223846793005ULL ^ (uint64_t) getpid() ^
			(uint64_t) (slcli_now_s() * 1e9);
	return v ? v : 1;
}

void
slcli_hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++)
	{
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* One line: newlines and tabs of libpq messages become single spaces. */
void
slcli_one_line(char *s)
{
	char	   *w = s;
	int			space = 0;

	for (char *r = s; *r; r++)
	{
		if (*r == '\n' || *r == '\r' || *r == '\t' || *r == ' ')
		{
			space = 1;
			continue;
		}
		if (space && w != s)
			*w++ = ' ';
		space = 0;
		*w++ = *r;
	}
	*w = '\0';
}

void
slcli_path_of(const slcl_client *c, const char *name, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s", c->dir, name);
}

int
slcli_fsync_dir(const char *dir)
{
	int			fd = open(dir, O_RDONLY | O_DIRECTORY);
	int			rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Remove a file if it exists (the caller fsyncs the directory). */
int
slcli_remove_file(slcl_client *c, const char *name)
{
	char		path[4096];

	slcli_path_of(c, name, path, sizeof(path));
	if (unlink(path) != 0 && errno != ENOENT)
	{
		slcli_fail_errno(c, "could not remove", path);
		return -1;
	}
	return 0;
}

int
slcli_file_exists(const slcl_client *c, const char *name)
{
	char		path[4096];
	struct stat st;

	slcli_path_of(c, name, path, sizeof(path));
	return stat(path, &st) == 0;
}
