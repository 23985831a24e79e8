// SPDX-License-Identifier: GPL-2.0-only
/*
 * hib-alt: measure several modes of one running fio job, alternating between them.
 *
 *   hib-alt STAT SEG_MS SKIP_MS WARM_MS TOTAL_MS FIRST SPEC...
 *
 * The host this harness runs on supplies CPU time unevenly: a spinning loop gets 10 %
 * more or less from one 50 ms window to the next, and the slow part of that noise
 * lasts seconds, so two fio runs of 2 s one after the other differ by several percent
 * whatever they measure.  Noise that slow is the same for two modes that take turns
 * every SEG_MS milliseconds within one run, and cancels in their ratio.
 *
 * Each SPEC is one mode: "-" (write nothing) or "PATH=VALUE[,PATH=VALUE...]", the knob
 * writes that switch to it (the pool's module parameters act on the next mapping).
 * STAT is the block device's stat file (/sys/block/DEV/stat).  hib-alt waits for the
 * device's completion count to move (fio has started), lets WARM_MS pass, then runs
 * segments of SEG_MS, cycling through the modes from mode FIRST, until TOTAL_MS have
 * passed and every mode has had the same number of segments.  In each segment it
 * switches the mode, lets SKIP_MS pass (the requests mapped under the previous mode
 * complete), and counts the requests completed until the segment ends.
 *
 * It prints one line, "IOS NS SEGS" for each mode in the order given: the requests
 * completed in that mode's measured windows, their total length in nanoseconds and the
 * number of segments.  Exit status 2 on bad arguments, 1 when a knob write or the stat
 * file fails, or when the device completes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_MODES 8
#define NSEC 1000000000LL

struct mode {
	char *spec;
	unsigned long long ios;
	long long ns;
	unsigned int segs;
};

static long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * NSEC + t.tv_nsec;
}

static void sleep_until(long long ns)
{
	struct timespec t = { .tv_sec = ns / NSEC, .tv_nsec = ns % NSEC };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
		;
}

/* Requests completed on the device: reads (field 1) plus writes (field 5). */
static int completed(const char *stat, unsigned long long *ios)
{
	unsigned long long f[5];
	char buf[512];
	ssize_t n;
	int fd;

	fd = open(stat, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu %llu %llu %llu", &f[0], &f[1], &f[2], &f[3], &f[4]) != 5)
		return -1;
	*ios = f[0] + f[4];
	return 0;
}

static int write_knob(const char *path, const char *value)
{
	size_t len = strlen(value);
	int fd, ok;

	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ok = write(fd, value, len) == (ssize_t)len;
	close(fd);
	return ok ? 0 : -1;
}

/* Apply "PATH=VALUE,..." (a copy is cut up; "-" writes nothing). */
static int apply(const char *spec)
{
	char *copy, *item, *save = NULL;
	int ret = 0;

	if (!strcmp(spec, "-"))
		return 0;
	copy = strdup(spec);
	if (!copy)
		return -1;
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');

		if (!eq || eq == item) {
			ret = -1;
			break;
		}
		*eq = '\0';
		if (write_knob(item, eq + 1)) {
			fprintf(stderr, "hib-alt: cannot write %s to %s: %s\n", eq + 1, item,
				strerror(errno));
			ret = -1;
			break;
		}
	}
	free(copy);
	return ret;
}

static long arg_ms(const char *s, const char *what)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 0 || v > 3600 * 1000) {
		fprintf(stderr, "hib-alt: bad %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct mode modes[MAX_MODES] = { 0 };
	unsigned long long start, c0, c1;
	long long seg, skip, warm, total, t, begin;
	unsigned int nmodes, i, cur;
	const char *stat;

	if (argc < 8 || argc - 7 > MAX_MODES) {
		fprintf(stderr, "usage: hib-alt STAT SEG_MS SKIP_MS WARM_MS TOTAL_MS FIRST SPEC... (1 to %d modes)\n",
			MAX_MODES);
		return 2;
	}
	stat = argv[1];
	seg = arg_ms(argv[2], "segment") * 1000000LL;
	skip = arg_ms(argv[3], "skip") * 1000000LL;
	warm = arg_ms(argv[4], "warm-up") * 1000000LL;
	total = arg_ms(argv[5], "total") * 1000000LL;
	nmodes = argc - 7;
	cur = arg_ms(argv[6], "first mode");
	if (seg == 0 || skip >= seg || cur >= nmodes) {
		fprintf(stderr, "hib-alt: need 0 <= SKIP < SEG and FIRST below the number of modes\n");
		return 2;
	}
	for (i = 0; i < nmodes; i++)
		modes[i].spec = argv[7 + i];

	if (apply(modes[cur].spec))
		return 1;
	if (completed(stat, &start)) {
		fprintf(stderr, "hib-alt: cannot read %s\n", stat);
		return 1;
	}
	/* fio has started when the device completes requests: 30 s at most */
	for (t = now_ns() + 30 * NSEC; ; ) {
		if (completed(stat, &c0))
			return 1;
		if (c0 != start)
			break;
		if (now_ns() > t) {
			fprintf(stderr, "hib-alt: no request completed on %s in 30 s\n", stat);
			return 1;
		}
		usleep(5000);
	}
	begin = now_ns() + warm;
	sleep_until(begin);
	for (t = begin, i = 0; t - begin < total || i % nmodes; t += seg, i++) {
		struct mode *m = &modes[cur];

		if (apply(m->spec))
			return 1;
		sleep_until(t + skip);
		if (completed(stat, &c0))
			return 1;
		m->ns -= now_ns();
		sleep_until(t + seg);
		if (completed(stat, &c1))
			return 1;
		m->ns += now_ns();
		m->ios += c1 - c0;
		m->segs++;
		cur = (cur + 1) % nmodes;
	}
	for (i = 0; i < nmodes; i++) {
		if (!modes[i].ios) {
			fprintf(stderr, "hib-alt: mode %u completed no request\n", i);
			return 1;
		}
		printf("%s%llu %lld %u", i ? " " : "", modes[i].ios, modes[i].ns, modes[i].segs);
	}
	printf("\n");
	return 0;
}
