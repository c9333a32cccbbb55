/*
 * replay_main.c — run a fuzz target's LLVMFuzzerTestOneInput over files,
 * without libFuzzer.
 *
 *   fuzz_<target>_replay FILE|DIR...
 *
 * Each FILE, and each regular file in each DIR (sorted by name, not
 * recursive), is read whole and passed once.  This is how the normal (gcc)
 * build runs tests/fuzz/regress/ and the seed corpora as meson tests: a
 * crash input that was fixed must keep passing.  Exit 0 when every input
 * ran; a finding aborts (or is reported by the sanitizer) as under libFuzzer.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	size_t cap = 1 << 16, n = 0;
	unsigned char *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			unsigned char *nb = realloc(buf, cap *= 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
	}
	fclose(f);
	if (!buf) {
		fprintf(stderr, "%s: out of memory\n", path);
		return -1;
	}
	/* an exact-size copy, so ASan sees reads past the input's end */
	unsigned char *in = malloc(n ? n : 1);
	if (!in) {
		free(buf);
		return -1;
	}
	memcpy(in, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(in, n);
	free(in);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	LLVMFuzzerInitialize(&argc, &argv);
	size_t ran = 0;
	int bad = 0;
	for (int a = 1; a < argc; a++) {
		struct stat sb;
		if (stat(argv[a], &sb) != 0) {
			perror(argv[a]);
			bad = 1;
			continue;
		}
		if (!S_ISDIR(sb.st_mode)) {
			bad |= run_file(argv[a]) != 0;
			ran++;
			continue;
		}
		DIR *d = opendir(argv[a]);
		if (!d) {
			perror(argv[a]);
			bad = 1;
			continue;
		}
		char **names = NULL;
		size_t nn = 0, cap = 0;
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			if (nn == cap) {
				char **nb = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *nb);
				if (!nb)
					break;
				names = nb;
			}
			size_t l = strlen(argv[a]) + strlen(e->d_name) + 2;
			if (!(names[nn] = malloc(l)))
				break;
			snprintf(names[nn], l, "%s/%s", argv[a], e->d_name);
			nn++;
		}
		closedir(d);
		if (nn > 1)
			qsort(names, nn, sizeof *names, cmp_str);
		for (size_t i = 0; i < nn; i++) {
			if (stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode)) {
				bad |= run_file(names[i]) != 0;
				ran++;
			}
			free(names[i]);
		}
		free(names);
	}
	printf("replayed %zu inputs\n", ran);
	return bad;
}
