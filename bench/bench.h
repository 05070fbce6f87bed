/* bench/bench.h - what the benchmark programs share: a clock, medians, paired ratios. */
#ifndef EMBER_BENCH_H
#define EMBER_BENCH_H

#include <stdlib.h>
#include <time.h>

/* Monotonic time in microseconds. */
static inline double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The median of v[0..n): sorts v in place. */
static inline double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The median of the per-round ratios num[i] / den[i] (n <= 64): rounds are
 * paired (run back to back), so slow drifts of the machine cancel out. Call
 * it before median(), which sorts its argument in place. */
static inline double paired_ratio(const double *num, const double *den, int n)
{
	double r[64];
	for (int i = 0; i < n && i < 64; i++)
		r[i] = num[i] / den[i];
	return median(r, n < 64 ? n : 64);
}

#endif
