/* vsim's guest workload: the program real guests run for `vsim kvm measure`.
 *
 *   workload spin SECONDS [THREADS]  spin on the CPU (one process per vCPU); report iterations
 *   workload dirty RATE WSS SECONDS  write one word per page over WSS bytes at RATE bytes/s
 *   workload touch WSS ORDER SECONDS [DELAY [WORK]]
 *                                    touch WSS bytes page by page as fast as possible (after
 *                                    idling DELAY seconds, which the host uses to push the idle
 *                                    guest's cold memory out), with WORK loop iterations of
 *                                    computation between two touches (a slower toucher),
 *                                    ORDER = seq | random
 *
 * SECONDS = 0 runs until the guest is stopped. Every report is one line on stdout (the serial
 * console), "vsim <kind> t=<seconds since boot> key=value ...", so the host can parse it while the
 * guest runs and after it has migrated.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define REPORT_S 0.25

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The guest's steal time in clock ticks (/proc/stat): what the hypervisor says it took. */
static unsigned long long steal_ticks(void)
{
	unsigned long long v[8] = {0};
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return 0;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) != 8)
		v[7] = 0;
	fclose(f);
	return v[7];
}

static void sleep_until(double t)
{
	double d = t - now();
	if (d <= 0)
		return;
	struct timespec ts = {(time_t)d, (long)((d - (time_t)d) * 1e9)};
	nanosleep(&ts, NULL);
}

static unsigned char *buffer(unsigned long bytes)
{
	unsigned char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		printf("vsim error what=mmap bytes=%lu\n", bytes);
		exit(1);
	}
	/* Touch every page once with a non-zero word: the working set exists before measuring. */
	for (unsigned long off = 0; off < bytes; off += PAGE)
		*(volatile uint64_t *)(p + off) = off | 1;
	return p;
}

static int spin(double seconds, int threads)
{
	int id = 0;
	for (int i = 1; i < threads; i++)
		if (fork() == 0) {
			id = i;
			break;
		}
	volatile uint64_t x = 1;
	unsigned long long iters = 0;
	double start = now(), next = start + REPORT_S;
	printf("vsim ready t=%.6f mode=spin id=%d\n", start, id);
	for (;;) {
		for (int i = 0; i < 65536; i++)
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		iters += 65536;
		double t = now();
		if (t >= next) {
			printf("vsim spin t=%.6f iters=%llu steal=%llu id=%d\n", t, iters, steal_ticks(), id);
			next += REPORT_S;
			if (seconds > 0 && t - start >= seconds)
				return 0;
		}
	}
}

static int dirty(double rate, unsigned long wss, double seconds)
{
	unsigned long pages = wss / PAGE, page = 0;
	unsigned char *p = buffer(wss);
	/* Pace in 10 ms slices: each slice writes its share of pages, then sleeps. */
	const double slice = 0.01;
	double per_slice = rate / PAGE * slice, owed = 0;
	unsigned long long written = 0, pass = 1;
	double start = now(), t = start, next = start + REPORT_S;
	printf("vsim ready t=%.6f mode=dirty rate=%.0f wss=%lu\n", start, rate, wss);
	for (;;) {
		owed += per_slice;
		while (owed >= 1.0) {
			*(volatile uint64_t *)(p + page * PAGE) = (pass << 32) | page | 1;
			written++;
			owed -= 1.0;
			if (++page == pages) {
				page = 0;
				pass++;
			}
		}
		t += slice;
		sleep_until(t);
		double n = now();
		if (n >= next) {
			printf("vsim dirty t=%.6f pages=%llu\n", n, written);
			next += REPORT_S;
			if (seconds > 0 && n - start >= seconds)
				return 0;
		}
		if (n - t > 1.0)  /* far behind (the guest was paused): do not catch up in a burst */
			t = n;
	}
}

static int touch(unsigned long wss, int random_order, double seconds, double delay,
		 unsigned long work)
{
	unsigned long pages = wss / PAGE;
	printf("vsim idle t=%.6f delay=%.3f\n", now(), delay);
	sleep_until(now() + delay);
	unsigned char *p = buffer(wss);
	unsigned long long touched = 0;
	uint64_t state = 88172645463325252ULL;
	double start = now(), next = start + REPORT_S;
	printf("vsim ready t=%.6f mode=touch wss=%lu order=%s\n", start, wss, random_order ? "random" : "seq");
	for (unsigned long i = 0;; i++) {
		unsigned long page;
		if (random_order) {
			state ^= state << 13;
			state ^= state >> 7;
			state ^= state << 17;
			page = state % pages;
		} else {
			page = i % pages;
		}
		(*(volatile uint64_t *)(p + page * PAGE))++;
		for (volatile unsigned long w = 0; w < work; w++)
			;
		touched++;
		if ((touched & 4095) == 0) {
			double t = now();
			if (t >= next) {
				printf("vsim touch t=%.6f pages=%llu\n", t, touched);
				next += REPORT_S;
				if (seconds > 0 && t - start >= seconds)
					return 0;
			}
		}
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "spin"))
		return spin(atof(argv[2]), argc >= 4 ? atoi(argv[3]) : 1);
	if (argc >= 5 && !strcmp(argv[1], "dirty"))
		return dirty(atof(argv[2]), strtoul(argv[3], NULL, 10), atof(argv[4]));
	if (argc >= 5 && !strcmp(argv[1], "touch"))
		return touch(strtoul(argv[2], NULL, 10), !strcmp(argv[3], "random"), atof(argv[4]),
			     argc >= 6 ? atof(argv[5]) : 0.0,
			     argc >= 7 ? strtoul(argv[6], NULL, 10) : 0);
	printf("vsim error what=usage argc=%d\n", argc);
	return 2;
}
