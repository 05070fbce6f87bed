/* tools/protocol-doc.c - rewrites the request section of docs/PROTOCOL.md (between its two marker lines) from the command table (make protocol-doc). */
#include "../ctl/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BEGIN_MARK "<!-- requests: generated from ctl/proto.c's table (make protocol-doc) -->\n"
#define END_MARK   "<!-- end of requests -->\n"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: protocol-doc docs/PROTOCOL.md\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	static char doc[1 << 20];
	size_t n = fread(doc, 1, sizeof(doc) - 1, f);
	fclose(f);
	doc[n] = 0;
	char *b = strstr(doc, BEGIN_MARK), *e = b ? strstr(b, END_MARK) : NULL;
	if (!b || !e) {
		fprintf(stderr, "%s: no marker lines\n", argv[1]);
		return 1;
	}
	b += strlen(BEGIN_MARK);
	int len = ctl_format_requests_md(NULL, 0);
	char *gen = malloc((size_t)len + 1);
	if (!gen)
		return 1;
	ctl_format_requests_md(gen, (size_t)len + 1);
	f = fopen(argv[1], "w");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	fwrite(doc, 1, (size_t)(b - doc), f);
	fputs(gen, f);
	fputs(e, f);
	free(gen);
	return fclose(f) == 0 ? 0 : 1;
}
