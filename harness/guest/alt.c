// SPDX-License-Identifier: GPL-2.0-only
/*
 * hib-alt: measure several modes of one running fio job, alternating between them.
 *
 * The host this harness runs on supplies CPU time unevenly: a spinning loop gets 10 %
 * more or less from one 50 ms window to the next, and the slow part of that noise
 * lasts seconds, so two fio runs of 2 s one after the other differ by several percent
 * whatever they measure.  Noise that slow is the same for two modes that take turns
 * every SEG_MS milliseconds within one run, and cancels in their ratio.
 *
 *   hib-alt STAT SEG_MS SKIP_MS WARM_MS TOTAL_MS SEED INFLIGHT SPEC...
 *
 * Each SPEC is one mode: "-" (write nothing) or "PATH=VALUE[,PATH=VALUE...]", the knob
 * writes that switch to it (the pool's module parameters act on the next mapping).
 * STAT is the block device's stat file (/sys/block/DEV/stat).  hib-alt switches to the
 * first mode, waits for the device to complete requests (fio has started), lets
 * WARM_MS pass (400 at least) and measures the rate in its second half.  It then runs
 * cycles in which every mode has one segment, in an order shuffled per cycle (SEED
 * seeds it), until TOTAL_MS have passed.  A segment switches the mode, reads each knob
 * back (the first time), waits the skip, then counts the sectors the device completes
 * until the segment ends.
 *
 * The skip lets the requests mapped under the previous mode complete: it is SKIP_MS,
 * or three times the time the queue takes to drain (INFLIGHT, the sectors fio keeps in
 * flight, at the warm-up's rate, and after every cycle at the slowest mode's rate) if
 * that is longer, counted from the moment the knobs were written; a segment is at
 * least three skips long (SEG_MS, or more).
 *
 * It prints one line: "SECTORS NS SEGS" for each mode in the order given (the 512-byte
 * sectors read and written in that mode's measured windows, their total length in
 * nanoseconds and the number of segments), then the skip and the segment length used,
 * in ms.  Exit status 2 on bad arguments, 1 when a knob write, its read-back or the stat
 * file fails, or when a mode saw no transfer.
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
	unsigned long long sectors;
	long long ns;
	unsigned int segs;
	int checked;
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

static const char *stat_path;
static unsigned long long last_sectors;

/*
 * Sectors the device has transferred: read (field 3) plus written (field 7).  Sectors,
 * not requests: the block layer may merge or split requests, differently per mode.
 */
/* The start of a file, NUL-terminated, in buf; -1 (said on stderr) when unreadable. */
static int read_file(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "hib-alt: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, size - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n < 0 ? -1 : 0;
}

static int transferred(unsigned long long *sectors)
{
	unsigned long long f[7];
	char buf[512];

	if (read_file(stat_path, buf, sizeof(buf)))
		return -1;
	if (sscanf(buf, "%llu %llu %llu %llu %llu %llu %llu", &f[0], &f[1], &f[2], &f[3],
		   &f[4], &f[5], &f[6]) != 7) {
		fprintf(stderr, "hib-alt: %s is not a block device's stat file\n", stat_path);
		return -1;
	}
	*sectors = f[2] + f[6];
	if (*sectors < last_sectors) {
		fprintf(stderr, "hib-alt: the sector count of %s went backwards\n", stat_path);
		return -1;
	}
	last_sectors = *sectors;
	return 0;
}

static int write_knob(const char *path, const char *value)
{
	size_t len = strlen(value);
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0) {
		fprintf(stderr, "hib-alt: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = write(fd, value, len);
	if (n != (ssize_t)len)
		fprintf(stderr, "hib-alt: cannot write %s to %s: %s\n", value, path,
			n < 0 ? strerror(errno) : "short write");
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

/* What the knob reads back is what was written (a trailing newline aside). */
static int check_knob(const char *path, const char *value)
{
	char buf[256];

	if (read_file(path, buf, sizeof(buf)))
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	if (strcmp(buf, value)) {
		fprintf(stderr, "hib-alt: %s reads \"%s\" after a write of \"%s\"\n", path, buf,
			value);
		return -1;
	}
	return 0;
}

/* A SPEC is "-" or PATH=VALUE items, comma-separated, each PATH and VALUE non-empty. */
static int valid_spec(const char *spec)
{
	const char *item = spec;

	if (!strcmp(spec, "-"))
		return 1;
	for (;;) {
		size_t len = strcspn(item, ",");
		const char *eq = memchr(item, '=', len);

		if (!eq || eq == item || eq == item + len - 1)
			return 0;
		if (!item[len])
			return 1;
		item += len + 1;
	}
}

/* Write the knobs of SPEC; with check, read each back. */
static int apply(const char *spec, int check)
{
	char *copy, *item, *save = NULL;
	int ret = 0;

	if (!strcmp(spec, "-"))
		return 0;
	copy = strdup(spec);
	if (!copy) {
		fprintf(stderr, "hib-alt: out of memory\n");
		return -1;
	}
	for (item = strtok_r(copy, ",", &save); item && !ret;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');

		*eq = '\0';
		ret = write_knob(item, eq + 1);
		if (!ret && check)
			ret = check_knob(item, eq + 1);
	}
	free(copy);
	return ret;
}

/* A skip of three drain times at least, a segment of three skips at least. */
static void lengthen(long long drain, long long *skip, long long *seg)
{
	if (3 * drain > *skip)
		*skip = 3 * drain;
	if (3 * *skip > *seg)
		*seg = 3 * *skip;
}

/* xorshift64: the shuffle needs no more */
static unsigned long long rnd(unsigned long long *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
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
	long long seg, skip, warm, total, t, sw, begin, drain;
	unsigned long long start, c0, c1, seed;
	unsigned int order[MAX_MODES];
	unsigned int nmodes, i, j, k;
	long inflight;

	if (argc < 9 || argc - 8 > MAX_MODES) {
		fprintf(stderr,
			"usage: hib-alt STAT SEG_MS SKIP_MS WARM_MS TOTAL_MS SEED INFLIGHT SPEC... (1 to %d modes)\n",
			MAX_MODES);
		return 2;
	}
	stat_path = argv[1];
	seg = arg_ms(argv[2], "segment") * 1000000LL;
	skip = arg_ms(argv[3], "skip") * 1000000LL;
	warm = arg_ms(argv[4], "warm-up") * 1000000LL;
	total = arg_ms(argv[5], "total") * 1000000LL;
	seed = (unsigned long long)arg_ms(argv[6], "seed") * 2654435761ULL + 88172645463325252ULL;
	inflight = arg_ms(argv[7], "sectors in flight");
	nmodes = argc - 8;
	if (seg == 0 || skip >= seg || total == 0) {
		fprintf(stderr, "hib-alt: need 0 <= SKIP < SEG and TOTAL > 0\n");
		return 2;
	}
	for (i = 0; i < nmodes; i++) {
		modes[i].spec = argv[8 + i];
		if (!valid_spec(modes[i].spec)) {
			fprintf(stderr, "hib-alt: bad mode \"%s\": not - nor PATH=VALUE[,...]\n",
				modes[i].spec);
			return 2;
		}
		order[i] = i;
	}

	if (apply(modes[0].spec, 0) || transferred(&start))
		return 1;
	/* fio has started when the device transfers data: 30 s at most */
	for (t = now_ns() + 30 * NSEC; ; usleep(5000)) {
		if (transferred(&c0))
			return 1;
		if (c0 != start)
			break;
		if (now_ns() > t) {
			fprintf(stderr, "hib-alt: nothing transferred on %s in 30 s\n", stat_path);
			return 1;
		}
	}
	/* the drain time needs a rate: 200 ms of it at least */
	if (warm < 400 * 1000000LL)
		warm = 400 * 1000000LL;
	sw = now_ns();
	sleep_until(sw + warm / 2);
	if (transferred(&c0))
		return 1;
	t = now_ns();
	sleep_until(sw + warm);
	if (transferred(&c1))
		return 1;
	/* the time the sectors in flight take at the warm-up's rate */
	drain = 0;
	if (c1 > c0)
		drain = (long long)((double)inflight * (now_ns() - t) / (c1 - c0));
	lengthen(drain, &skip, &seg);

	begin = now_ns();
	for (t = begin; t - begin < total; ) {
		/* one cycle: every mode once, in a shuffled order */
		for (i = nmodes - 1; i > 0; i--) {
			j = rnd(&seed) % (i + 1);
			k = order[i];
			order[i] = order[j];
			order[j] = k;
		}
		for (i = 0; i < nmodes; i++, t += seg) {
			struct mode *m = &modes[order[i]];

			if (apply(m->spec, !m->checked))
				return 1;
			m->checked = 1;
			sw = now_ns();
			/* the skip runs from the switch, even when this segment started late */
			sleep_until((sw > t ? sw : t) + skip);
			if (transferred(&c0))
				return 1;
			m->ns -= now_ns();
			if (t + seg > now_ns())
				sleep_until(t + seg);
			else
				sleep_until(now_ns() + seg - skip);
			if (transferred(&c1))
				return 1;
			m->ns += now_ns();
			m->sectors += c1 - c0;
			m->segs++;
			if (now_ns() > t + seg)
				t = now_ns() - seg;	/* late: the next segment starts now */
		}
		/* the slowest mode's drain time, now that every mode has a rate */
		for (i = 0; i < nmodes; i++)
			if (modes[i].sectors)
				lengthen((long long)((double)inflight * modes[i].ns /
						     modes[i].sectors), &skip, &seg);
	}
	for (i = 0; i < nmodes; i++) {
		if (!modes[i].sectors) {
			fprintf(stderr, "hib-alt: nothing transferred in mode %u (%s)\n", i,
				modes[i].spec);
			return 1;
		}
		printf("%llu %lld %u ", modes[i].sectors, modes[i].ns, modes[i].segs);
	}
	printf("%lld %lld\n", skip / 1000000, seg / 1000000);
	return 0;
}
