/* bench/ctl_bench.c - the control socket's latencies against a running VM: a no-op request's round trip (status) and pause-to-paused (suspend-vm until its response), through the client library. */
#include <ember/ctl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(v[0]), cmp);
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += v[i];
	printf("%-28s n=%d  median %.1f us  p90 %.1f us  min %.1f us  mean %.1f us\n", what, n,
	       v[n / 2], v[n * 9 / 10], v[0], sum / n);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: ctl-bench SOCKET [N]\n");
		return 2;
	}
	int n = argc > 2 ? atoi(argv[2]) : 1000;
	if (n < 10 || n > 1000000)
		n = 1000;
	struct ember_ctl *c;
	struct ember_error err = {0};
	if (ember_ctl_connect(argv[1], 5000, &c, &err) < 0) {
		fprintf(stderr, "ctl-bench: %s\n", err.msg);
		return 1;
	}
	double *v = calloc((size_t)n, sizeof(double));
	double *w = calloc((size_t)n, sizeof(double));
	if (!v || !w)
		return 1;
	struct ember_ctl_status st;
	for (int i = 0; i < n; i++) {
		double t = now_us();
		if (ember_ctl_status(c, &st, &err) < 0) {
			fprintf(stderr, "ctl-bench: %s\n", err.msg);
			return 1;
		}
		v[i] = now_us() - t;
	}
	report("status round trip", v, n);
	int m = n / 10;
	for (int i = 0; i < m; i++) {
		double t = now_us();
		if (ember_ctl_suspend_vm(c, &err) < 0) {
			fprintf(stderr, "ctl-bench: %s\n", err.msg);
			return 1;
		}
		v[i] = now_us() - t;
		t = now_us();
		if (ember_ctl_resume_vm(c, &err) < 0) {
			fprintf(stderr, "ctl-bench: %s\n", err.msg);
			return 1;
		}
		w[i] = now_us() - t;
	}
	report("suspend-vm (pause-to-paused)", v, m);
	report("resume-vm", w, m);
	free(v);
	free(w);
	ember_ctl_close(c);
	return 0;
}
